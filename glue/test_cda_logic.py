"""Unit tests for cda_logic (standard-library unittest only; no pyspark, no boto3).

Run: python3 -m unittest discover -s glue -p 'test_*.py'
"""

from __future__ import annotations

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cda_logic as L  # noqa: E402

BUCKET = "gw-cda-prod"
PREFIX = "cda/pc"


def entry(**overrides):
    raw = {
        "lastSuccessfulWriteTimestamp": "1700000003000",
        "totalProcessedRecordsCount": 240000,
        "dataFilesPath": f"s3://{BUCKET}/{PREFIX}/pc_policyperiod",
        "schemaHistory": {"111": "1700000000000", "222": "1700000002000"},
    }
    raw.update(overrides)
    return raw


def manifest(**tables):
    return json.dumps(tables or {"pc_policyperiod": entry()})


class ManifestParseTest(unittest.TestCase):
    def test_valid_manifest_in_guidewire_shape(self):
        parsed = L.parse_manifest(
            manifest(
                pc_policyperiod=entry(),
                pc_account=entry(
                    lastSuccessfulWriteTimestamp="1562112543749",
                    dataFilesPath=f"s3://{BUCKET}/{PREFIX}/pc_account",
                    schemaHistory={"9": "1562112543749"},
                ),
            )
        )
        self.assertEqual(sorted(parsed), ["pc_account", "pc_policyperiod"])
        e = parsed["pc_policyperiod"]
        self.assertEqual(e.table, "pc_policyperiod")
        self.assertEqual(e.last_successful_write_timestamp, 1700000003000)
        self.assertEqual(e.total_processed_records_count, 240000)
        self.assertEqual(e.data_files_path, f"s3://{BUCKET}/{PREFIX}/pc_policyperiod")
        self.assertEqual(dict(e.schema_history), {"111": 1700000000000, "222": 1700000002000})

    def test_integer_timestamps_are_accepted(self):
        e = L.parse_manifest_entry("t", entry(lastSuccessfulWriteTimestamp=1700000003000, schemaHistory={"1": 5}))
        self.assertEqual(e.last_successful_write_timestamp, 1700000003000)
        self.assertEqual(dict(e.schema_history), {"1": 5})

    def test_bytes_are_decoded(self):
        self.assertIn("pc_policyperiod", L.parse_manifest(manifest().encode("utf-8")))

    def test_schema_ids_are_ordered_by_first_appearance(self):
        e = L.parse_manifest_entry("t", entry(schemaHistory={"zzz": "10", "aaa": "30", "mmm": "20"}))
        self.assertEqual(e.schema_ids(), ["zzz", "mmm", "aaa"])

    def test_not_json(self):
        with self.assertRaisesRegex(L.ManifestError, "not valid JSON"):
            L.parse_manifest("{not json")

    def test_not_utf8(self):
        with self.assertRaisesRegex(L.ManifestError, "not UTF-8"):
            L.parse_manifest(b"\xff\xfe{")

    def test_top_level_must_be_an_object(self):
        with self.assertRaisesRegex(L.ManifestError, "JSON object keyed by table name, got list"):
            L.parse_manifest("[]")

    def test_entry_must_be_an_object(self):
        with self.assertRaisesRegex(L.ManifestError, "'pc_x' must be a JSON object, got str"):
            L.parse_manifest(json.dumps({"pc_x": "oops"}))

    def test_each_missing_field_is_named(self):
        for name in L.REQUIRED_ENTRY_FIELDS:
            with self.subTest(field=name):
                raw = entry()
                del raw[name]
                with self.assertRaisesRegex(L.ManifestError, f"is missing {name}"):
                    L.parse_manifest_entry("pc_policyperiod", raw)

    def test_all_missing_fields_are_listed(self):
        with self.assertRaisesRegex(L.ManifestError, "lastSuccessfulWriteTimestamp, totalProcessedRecordsCount, dataFilesPath, schemaHistory"):
            L.parse_manifest_entry("t", {})

    def test_wrong_type_last_successful_write_timestamp(self):
        for bad in ("abc", "", 1.5, True, None, [], {}, -1, "-5", "12.0"):
            with self.subTest(value=bad):
                with self.assertRaisesRegex(L.ManifestError, "lastSuccessfulWriteTimestamp"):
                    L.parse_manifest_entry("t", entry(lastSuccessfulWriteTimestamp=bad))

    def test_wrong_type_total_processed_records_count(self):
        for bad in ("many", 2.0, False, None, -5, [1]):
            with self.subTest(value=bad):
                with self.assertRaisesRegex(L.ManifestError, "totalProcessedRecordsCount"):
                    L.parse_manifest_entry("t", entry(totalProcessedRecordsCount=bad))

    def test_digit_string_count_is_accepted(self):
        self.assertEqual(L.parse_manifest_entry("t", entry(totalProcessedRecordsCount="42")).total_processed_records_count, 42)

    def test_wrong_data_files_path(self):
        for bad in (5, "", "   ", None, "https://x/y", "s3:///key", "/local/path"):
            with self.subTest(value=bad):
                with self.assertRaisesRegex(L.ManifestError, "dataFilesPath"):
                    L.parse_manifest_entry("t", entry(dataFilesPath=bad))

    def test_wrong_schema_history(self):
        cases = {
            "must be an object": ["111"],
            "is empty": {},
            r"schemaHistory\['111'\]": {"111": "soon"},
            "unusable schema id": {"a/b": "1"},
        }
        for message, bad in cases.items():
            with self.subTest(value=bad):
                with self.assertRaisesRegex(L.ManifestError, message):
                    L.parse_manifest_entry("t", entry(schemaHistory=bad))

    def test_strict_parse_fails_on_any_bad_entry(self):
        with self.assertRaisesRegex(L.ManifestError, "'broken'"):
            L.parse_manifest(json.dumps({"pc_policyperiod": entry(), "broken": {"dataFilesPath": 1}}))

    def test_entry_for_table_ignores_other_bad_entries(self):
        text = json.dumps({"pc_policyperiod": entry(), "broken": {"dataFilesPath": 1}})
        self.assertEqual(L.manifest_entry_for_table(text, "pc_policyperiod").total_processed_records_count, 240000)

    def test_entry_for_table_missing_table(self):
        text = json.dumps({"pc_a": entry(), "pc_b": entry()})
        with self.assertRaisesRegex(L.ManifestError, r"'pc_c' is not in manifest.json \(tables listed: pc_a, pc_b\)"):
            L.manifest_entry_for_table(text, "pc_c")

    def test_entry_for_table_validates_its_entry(self):
        with self.assertRaisesRegex(L.ManifestError, "totalProcessedRecordsCount"):
            L.manifest_entry_for_table(json.dumps({"t": entry(totalProcessedRecordsCount="x")}), "t")


class FolderSelectionTest(unittest.TestCase):
    LAST = 1700000003000
    FOLDERS = {
        "111": ["1700000000000", "1700000001000"],
        "222": ["1700000002000", "1700000003000", "1700000004000"],  # the last is being written
    }

    def ts(self, selected):
        return [(f.timestamp, f.schema_id) for f in selected]

    def test_empty_watermark_selects_every_complete_folder(self):
        self.assertEqual(
            self.ts(L.select_folders(self.FOLDERS, None, self.LAST)),
            [(1700000000000, "111"), (1700000001000, "111"), (1700000002000, "222"), (1700000003000, "222")],
        )

    def test_watermark_in_the_middle_is_exclusive(self):
        self.assertEqual(
            self.ts(L.select_folders(self.FOLDERS, 1700000001000, self.LAST)),
            [(1700000002000, "222"), (1700000003000, "222")],
        )

    def test_watermark_between_folders(self):
        self.assertEqual(self.ts(L.select_folders(self.FOLDERS, 1700000001500, self.LAST)), [(1700000002000, "222"), (1700000003000, "222")])

    def test_folders_newer_than_last_successful_write_are_excluded(self):
        selected = L.select_folders(self.FOLDERS, None, 1700000002500)
        self.assertEqual(max(f.timestamp for f in selected), 1700000002000)
        self.assertNotIn(1700000004000, [f.timestamp for f in L.select_folders(self.FOLDERS, None, self.LAST)])

    def test_folder_equal_to_last_successful_write_is_included(self):
        self.assertIn((1700000003000, "222"), self.ts(L.select_folders(self.FOLDERS, None, self.LAST)))

    def test_nothing_new(self):
        self.assertEqual(L.select_folders(self.FOLDERS, self.LAST, self.LAST), [])
        self.assertEqual(L.select_folders({}, None, self.LAST), [])

    def test_non_numeric_folder_names_are_ignored(self):
        folders = {"111": ["_temporary", ".spark-staging-1", "abc", "123a", "", "1.5", "-3", "1700000000000", True]}
        self.assertEqual(self.ts(L.select_folders(folders, None, self.LAST)), [(1700000000000, "111")])

    def test_multiple_schema_ids_are_merged_in_time_order(self):
        folders = {"b": ["30", "10"], "a": ["20", "40"], "c": ["25"]}
        self.assertEqual(self.ts(L.select_folders(folders, 10, 35)), [(20, "a"), (25, "c"), (30, "b")])

    def test_same_timestamp_in_two_schemas_sorts_by_schema_id(self):
        self.assertEqual(self.ts(L.select_folders({"z": ["5"], "a": ["5"]}, None, 10)), [(5, "a"), (5, "z")])

    def test_duplicates_collapse_and_ints_are_accepted(self):
        self.assertEqual(self.ts(L.select_folders({"a": ["5", 5, "005"]}, None, 10)), [(5, "a")])

    def test_zero_watermark_behaves_like_empty(self):
        self.assertEqual(L.select_folders(self.FOLDERS, 0, self.LAST), L.select_folders(self.FOLDERS, None, self.LAST))

    def test_next_watermark(self):
        selected = L.select_folders(self.FOLDERS, 1700000000000, self.LAST)
        self.assertEqual(L.next_watermark(selected, 1700000000000), "1700000003000")
        self.assertEqual(L.next_watermark([], 1700000000000), "1700000000000")
        self.assertEqual(L.next_watermark([], None), "")
        self.assertEqual(L.next_watermark([L.TimestampFolder(7, "a")], None), "7")

    def test_parse_watermark(self):
        self.assertIsNone(L.parse_watermark(None))
        self.assertIsNone(L.parse_watermark(""))
        self.assertIsNone(L.parse_watermark("  "))
        self.assertEqual(L.parse_watermark("0"), 0)
        self.assertEqual(L.parse_watermark(" 1700000003000 "), 1700000003000)
        for bad in ("-1", "12a", "1.5", "2026-11-27T02:00:00Z"):
            with self.subTest(value=bad):
                with self.assertRaisesRegex(L.ArgumentError, "--watermark"):
                    L.parse_watermark(bad)

    def test_timestamp_folder_names_from_common_prefixes(self):
        prefixes = ["cda/pc/t/111/100/", "cda/pc/t/111/_temporary/", "cda/pc/t/222/300/", "elsewhere/111/5/"]
        self.assertEqual(L.timestamp_folder_names(prefixes, "cda/pc/t/111"), ["100", "_temporary"])
        self.assertEqual(L.timestamp_folder_names(prefixes, "cda/pc/t/111/"), ["100", "_temporary"])
        self.assertEqual(L.timestamp_folder_names([], "x/"), [])

    def test_is_parquet_key(self):
        self.assertTrue(L.is_parquet_key("cda/t/1/2/part-0000.parquet"))
        for key in ("cda/t/1/2/_SUCCESS", "cda/t/1/2/.part.parquet", "cda/t/1/2/_tmp.parquet", "cda/t/1/2/part.parquet.crc", "cda/t/1/2/"):
            with self.subTest(key=key):
                self.assertFalse(L.is_parquet_key(key))


class S3PathTest(unittest.TestCase):
    def test_split_s3_uri(self):
        self.assertEqual(L.split_s3_uri("s3://my-bucket/a/b.parquet"), ("my-bucket", "a/b.parquet"))
        self.assertEqual(L.split_s3_uri("s3://my.bucket.1"), ("my.bucket.1", ""))
        self.assertEqual(L.split_s3_uri("s3://my-bucket/"), ("my-bucket", ""))

    def test_split_s3_uri_errors(self):
        cases = {
            "http://my-bucket/a": "must start with s3://",
            "S3://my-bucket/a": "must start with s3://",
            "my-bucket/a": "must start with s3://",
            "s3://": "no bucket name",
            "s3:///key": "no bucket name",
            "s3://Bad_Bucket/a": "invalid bucket name",
            "s3://ab/a": "invalid bucket name",
            "s3://a..b/a": "invalid bucket name",
            "s3://-bucket/a": "invalid bucket name",
        }
        for uri, message in cases.items():
            with self.subTest(uri=uri):
                with self.assertRaisesRegex(L.S3UriError, message):
                    L.split_s3_uri(uri)
        with self.assertRaisesRegex(L.S3UriError, "not a string"):
            L.split_s3_uri(None)

    def test_s3_uri_and_join(self):
        self.assertEqual(L.s3_uri("lake-bkt", "/raw/x/"), "s3://lake-bkt/raw/x/")
        self.assertEqual(L.join_key("/cda/", "", "pc//", "manifest.json"), "cda/pc/manifest.json")
        self.assertEqual(L.as_prefix("a/b"), "a/b/")
        self.assertEqual(L.as_prefix("/a/b//"), "a/b/")
        self.assertEqual(L.as_prefix(""), "")
        with self.assertRaises(L.ArgumentError):
            L.s3_uri("s3://lake-bkt", "x")

    def test_manifest_key(self):
        self.assertEqual(L.manifest_key("cda/pc"), "cda/pc/manifest.json")
        self.assertEqual(L.manifest_key("cda/pc/"), "cda/pc/manifest.json")

    def test_table_source_prefix(self):
        e = L.parse_manifest_entry("pc_policyperiod", entry())
        self.assertEqual(L.table_source_prefix(e, BUCKET, PREFIX), "cda/pc/pc_policyperiod/")
        self.assertEqual(L.table_source_prefix(e, BUCKET, "cda/pc/"), "cda/pc/pc_policyperiod/")

    def test_table_source_prefix_rejects_other_bucket_or_prefix(self):
        e = L.parse_manifest_entry("t", entry(dataFilesPath="s3://other-bucket/cda/pc/t"))
        with self.assertRaisesRegex(L.ManifestError, "not --source_bucket"):
            L.table_source_prefix(e, BUCKET, PREFIX)
        sibling = L.parse_manifest_entry("t", entry(dataFilesPath=f"s3://{BUCKET}/cda/pc2/t"))
        with self.assertRaisesRegex(L.ManifestError, "not under --source_prefix"):
            L.table_source_prefix(sibling, BUCKET, PREFIX)
        root = L.parse_manifest_entry("t", entry(dataFilesPath=f"s3://{BUCKET}/cda/pc/"))
        with self.assertRaisesRegex(L.ManifestError, "not under --source_prefix"):
            L.table_source_prefix(root, BUCKET, PREFIX)

    def test_source_folder_prefixes(self):
        self.assertEqual(L.schema_folder_prefix("cda/pc/t/", "111"), "cda/pc/t/111/")
        self.assertEqual(L.timestamp_folder_prefix("cda/pc/t/", L.TimestampFolder(1700000000000, "111")), "cda/pc/t/111/1700000000000/")

    def test_lake_prefixes(self):
        b = "policycenter-20261127T020000Z"
        self.assertEqual(L.lake_batch_prefix("policycenter", "pc_policyperiod", b), f"raw/policycenter/pc_policyperiod/batch_id={b}/")
        self.assertEqual(
            L.lake_folder_prefix("policycenter", "pc_policyperiod", b, L.TimestampFolder(1700000000000, "111")),
            f"raw/policycenter/pc_policyperiod/batch_id={b}/ts=1700000000000/",
        )
        self.assertEqual(L.lake_folder_prefix("p1", "t", b, 42), f"raw/p1/t/batch_id={b}/ts=42/")

    def test_result_keys(self):
        b = "policycenter-20261127T020000Z"
        self.assertEqual(L.result_key("policycenter", b, "pc_x"), f"_runs/policycenter/{b}/pc_x.json")
        self.assertEqual(L.result_key("policycenter", b, "pc_x", L.JOB_LAKE_TO_SNOWFLAKE), f"_runs/policycenter/{b}/snowflake/pc_x.json")
        with self.assertRaisesRegex(L.CdaError, "unknown job"):
            L.result_key("policycenter", b, "pc_x", "other")


VALID_CDA_ARGS = {
    "pipeline": "policycenter",
    "batch_id": "policycenter-20261127T020000Z",
    "table": "pc_policyperiod",
    "source_bucket": BUCKET,
    "source_prefix": "/cda/pc/",
    "lake_bucket": "acme-lake-us-east-1",
    "watermark": "1700000001000",
}


class ArgumentTest(unittest.TestCase):
    def args(self, **overrides):
        a = dict(VALID_CDA_ARGS)
        a.update(overrides)
        return a

    def test_valid_cda_args(self):
        a = L.validate_cda_to_lake_args(self.args())
        self.assertEqual(
            a,
            L.CdaToLakeArgs(
                pipeline="policycenter",
                batch_id="policycenter-20261127T020000Z",
                table="pc_policyperiod",
                source_bucket=BUCKET,
                source_prefix="cda/pc",
                lake_bucket="acme-lake-us-east-1",
                watermark=1700000001000,
            ),
        )

    def test_watermark_is_optional(self):
        a = self.args()
        del a["watermark"]
        self.assertIsNone(L.validate_cda_to_lake_args(a).watermark)
        self.assertIsNone(L.validate_cda_to_lake_args(self.args(watermark="")).watermark)

    def test_each_missing_required_arg_is_named(self):
        for name in L.CDA_TO_LAKE_ARGS:
            for absent in ("drop", "", "  ", None):
                with self.subTest(arg=name, absent=absent):
                    a = self.args()
                    if absent == "drop":
                        del a[name]
                    else:
                        a[name] = absent
                    with self.assertRaisesRegex(L.ArgumentError, f"missing job argument\\(s\\): --{name}$"):
                        L.validate_cda_to_lake_args(a)

    def test_bad_values(self):
        cases = [
            ({"pipeline": "PolicyCenter", "batch_id": "PolicyCenter-20261127T020000Z"}, "--pipeline"),
            ({"pipeline": "p"}, "--pipeline"),
            ({"table": "PC_Policy"}, "--table"),
            ({"table": "pc/policy"}, "--table"),
            ({"batch_id": "policycenter-2026-11-27T02:00:00Z"}, "must look like"),
            ({"batch_id": "claimcenter-20261127T020000Z"}, "does not belong to --pipeline"),
            ({"batch_id": "policycenter-20261332T020000Z"}, "valid UTC date-time"),
            ({"batch_id": "policycenter-20261127T250000Z"}, "valid UTC date-time"),
            ({"source_bucket": "s3://gw-cda-prod"}, "--source_bucket must be a bare S3 bucket name"),
            ({"lake_bucket": "Lake_Bucket"}, "--lake_bucket must be a bare S3 bucket name"),
            ({"lake_bucket": BUCKET}, "must differ"),
            ({"source_prefix": "s3://gw-cda-prod/cda"}, "--source_prefix"),
            ({"source_prefix": "cda//pc"}, "--source_prefix"),
            ({"watermark": "yesterday"}, "--watermark"),
        ]
        for overrides, message in cases:
            with self.subTest(overrides=overrides):
                with self.assertRaisesRegex(L.ArgumentError, message):
                    L.validate_cda_to_lake_args(self.args(**overrides))

    def test_valid_snowflake_args(self):
        a = L.validate_lake_to_snowflake_args(
            {
                "pipeline": "policycenter",
                "batch_id": "policycenter-20261127T020000Z",
                "table": "pc_policyperiod",
                "lake_bucket": "acme-lake-us-east-1",
                "snowflake_connection": "snowflake-base",
                "fence_region": "us-west-1",
                "fence_epoch": "12",
            }
        )
        self.assertEqual(a.snowflake_connection, "snowflake-base")
        self.assertEqual((a.fence_region, a.fence_epoch), ("us-west-1", 12))
        self.assertEqual(a.lake_bucket, "acme-lake-us-east-1")

    def test_snowflake_args_errors(self):
        base = {
            "pipeline": "policycenter",
            "batch_id": "policycenter-20261127T020000Z",
            "table": "pc_policyperiod",
            "lake_bucket": "acme-lake-us-east-1",
            "fence_region": "us-east-1",
            "fence_epoch": "1",
        }
        with self.assertRaisesRegex(L.ArgumentError, "--snowflake_connection"):
            L.validate_lake_to_snowflake_args(base)
        ok = {**base, "snowflake_connection": "snowflake-base"}
        for key in ("fence_region", "fence_epoch"):
            with self.assertRaisesRegex(L.ArgumentError, f"missing job argument\\(s\\): --{key}"):
                L.validate_lake_to_snowflake_args({k: v for k, v in ok.items() if k != key})
        for key, value, message in (
            ("fence_region", "us-east-1'; DROP TABLE x", "--fence_region must be an AWS region name"),
            ("fence_region", "US-EAST-1", "--fence_region must be an AWS region name"),
            ("fence_epoch", "0", "--fence_epoch must be a whole number >= 1"),
            ("fence_epoch", "3.0", "--fence_epoch must be a whole number >= 1"),
            ("fence_epoch", "1 OR 1=1", "--fence_epoch must be a whole number >= 1"),
        ):
            with self.subTest(key=key, value=value):
                with self.assertRaisesRegex(L.ArgumentError, message):
                    L.validate_lake_to_snowflake_args({**ok, key: value})
        with self.assertRaisesRegex(L.ArgumentError, "must be a Glue connection name"):
            L.validate_lake_to_snowflake_args({**base, "snowflake_connection": "bad/name;drop"})

    def test_fence_guard_sql(self):
        sql = L.fence_guard_sql("us-east-1", 7)
        self.assertIn("COUNT(*) = 1 AND COUNT_IF(REGION = 'us-east-1' AND EPOCH = 7) = 1", sql)
        self.assertTrue(sql.endswith("FROM CONTROL.FENCE"))
        self.assertNotIn(";", sql)  # the connector splits actions on ';'
        with self.assertRaises(L.ArgumentError):
            L.fence_guard_sql("us-east-1' OR '1'='1", 7)
        self.assertIsNone(L.stale_fence_error(RuntimeError("timeout"), "us-east-1", 7))

    def test_optional_argv(self):
        argv = ["script.py", "--JOB_NAME", "j", "--watermark", "", "--table", "t", "--x=1"]
        self.assertEqual(L.optional_argv(argv, "watermark"), "")
        self.assertEqual(L.optional_argv(argv, "table"), "t")
        self.assertEqual(L.optional_argv(argv, "x"), "1")
        self.assertEqual(L.optional_argv(argv, "missing", "dflt"), "dflt")
        self.assertEqual(L.optional_argv(["--watermark", "--table", "t"], "watermark"), "")
        self.assertEqual(L.optional_argv(["--watermark"], "watermark"), "")
        self.assertEqual(L.optional_argv(["--watermark", "17"], "watermark"), "17")


class ResultObjectTest(unittest.TestCase):
    B = "policycenter-20261127T020000Z"

    def folders(self):
        return [
            L.folder_result(L.TimestampFolder(1, "111"), "s3://gw-cda-prod/cda/pc/t/111/1/", "s3://lake-bkt/raw/p/t/batch_id=b/ts=1/", 10),
            L.folder_result(L.TimestampFolder(2, "222"), "s3://gw-cda-prod/cda/pc/t/222/2/", "s3://lake-bkt/raw/p/t/batch_id=b/ts=2/", 5),
        ]

    def success(self, **overrides):
        kwargs = dict(
            job=L.JOB_CDA_TO_LAKE,
            pipeline="policycenter",
            batch_id=self.B,
            table="pc_x",
            status="SUCCEEDED",
            rows=15,
            lake_path="s3://lake-bkt/raw/policycenter/pc_x/batch_id=b/",
            glue_run_id="jr_1",
            started_at="2026-11-27T02:00:05Z",
            completed_at="2026-11-27T02:03:00Z",
            previous_watermark="0",
            watermark="2",
            folders=self.folders(),
        )
        kwargs.update(overrides)
        return L.build_result(**kwargs)

    def test_success_object(self):
        r = self.success()
        self.assertEqual(
            set(r),
            {"schemaVersion", "job", "pipeline", "batchId", "table", "status", "rows", "lakePath", "glueRunId",
             "startedAt", "completedAt", "previousWatermark", "watermark", "folders"},
        )
        self.assertEqual((r["rows"], r["watermark"], r["previousWatermark"], r["status"]), (15, "2", "0", "SUCCEEDED"))
        self.assertEqual(r["folders"][0], {
            "schemaId": "111", "timestamp": "1", "source": "s3://gw-cda-prod/cda/pc/t/111/1/",
            "target": "s3://lake-bkt/raw/p/t/batch_id=b/ts=1/", "rows": 10,
        })
        self.assertEqual(json.loads(L.result_json(r)), r)

    def test_completed_at_defaults_to_now_in_utc(self):
        r = self.success(completed_at=None)
        self.assertRegex(r["completedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_rows_must_match_folders(self):
        with self.assertRaisesRegex(L.CdaError, r"rows \(14\) differs from the sum of folder rows \(15\)"):
            self.success(rows=14)

    def test_rows_must_be_non_negative_int(self):
        for bad in (-1, 1.0, True, "3", None):
            with self.subTest(rows=bad):
                with self.assertRaisesRegex(L.CdaError, "non-negative integer"):
                    self.success(rows=bad, folders=())

    def test_failed_keeps_previous_watermark_and_needs_error(self):
        r = self.success(status="FAILED", rows=0, folders=(), watermark="999", error="AccessDenied")
        self.assertEqual((r["watermark"], r["error"]), ("0", "AccessDenied"))
        with self.assertRaisesRegex(L.CdaError, "must carry an error"):
            self.success(status="FAILED", rows=0, folders=())

    def test_error_is_truncated(self):
        self.assertEqual(len(self.success(status="FAILED", rows=0, folders=(), error="x" * 5000)["error"]), 4000)

    def test_unknown_status_or_job(self):
        with self.assertRaisesRegex(L.CdaError, "status must be one of"):
            self.success(status="DONE")
        with self.assertRaisesRegex(L.CdaError, "unknown job"):
            self.success(job="other")

    def test_extra_fields_and_clash(self):
        self.assertEqual(self.success(extra={"manifestTotalProcessedRecordsCount": 9})["manifestTotalProcessedRecordsCount"], 9)
        with self.assertRaisesRegex(L.CdaError, "would overwrite rows"):
            self.success(extra={"rows": 1})

    def test_snowflake_result_has_no_watermark(self):
        r = self.success(job=L.JOB_LAKE_TO_SNOWFLAKE, folders=(), target="BASE.PC_X")
        self.assertNotIn("watermark", r)
        self.assertNotIn("folders", r)
        self.assertEqual(r["target"], "BASE.PC_X")

    def test_folder_result_rejects_bad_rows(self):
        with self.assertRaises(L.CdaError):
            L.folder_result(L.TimestampFolder(1, "a"), "s3://b-1/x", "s3://b-2/y", -3)

    def test_check_upstream_result(self):
        good = self.success(pipeline="policycenter", table="pc_x")
        good = json.loads(L.result_json(good))
        self.assertIs(L.check_upstream_result(good, "policycenter", self.B, "pc_x"), good)
        cases = [
            ({"status": "FAILED"}, "did not succeed"),
            ({"batchId": "policycenter-20261128T020000Z"}, "batchId="),
            ({"table": "pc_y"}, "table="),
            ({"job": L.JOB_LAKE_TO_SNOWFLAKE}, "job="),
            ({"schemaVersion": 2}, "schemaVersion"),
            ({"rows": 16}, r"differ from its folders' sum \(15\)"),
            ({"folders": None}, "no folders list"),
            ({"folders": [{"rows": 1}]}, "malformed folder"),
        ]
        for change, message in cases:
            with self.subTest(change=change):
                with self.assertRaisesRegex(L.CdaError, message):
                    L.check_upstream_result({**good, **change}, "policycenter", self.B, "pc_x")
        with self.assertRaisesRegex(L.CdaError, "JSON object"):
            L.check_upstream_result([], "policycenter", self.B, "pc_x")


class SnowflakeSqlTest(unittest.TestCase):
    B = "policycenter-20261127T020000Z"
    COLS = [("id", "bigint"), ("gwcbi___seqval_hex", "string"), ("gwcbi___operation", "int"),
            ("amount", "decimal(18,2)"), ("CDA_TIMESTAMP", "bigint"), ("BATCH_ID", "string")]

    def test_types(self):
        self.assertEqual(L.snowflake_type("string"), "VARCHAR")
        self.assertEqual(L.snowflake_type("bigint"), "NUMBER(19,0)")
        self.assertEqual(L.snowflake_type("timestamp"), "TIMESTAMP_NTZ")
        self.assertEqual(L.snowflake_type("decimal(18, 2)"), "NUMBER(18,2)")
        self.assertEqual(L.snowflake_type("array<string>"), "VARIANT")
        with self.assertRaisesRegex(L.CdaError, "precision 1-38"):
            L.snowflake_type("decimal(40,2)")
        with self.assertRaisesRegex(L.CdaError, "no Snowflake type"):
            L.snowflake_type("interval")

    def test_names(self):
        self.assertEqual(L.base_table("pc_policyperiod"), "BASE.PC_POLICYPERIOD")
        self.assertEqual(L.stage_table("pc_x", self.B), "PC_X__STG_20261127T020000Z")
        self.assertEqual(L.quote_ident("gwcbi___operation"), '"GWCBI___OPERATION"')
        with self.assertRaisesRegex(L.CdaError, "plain Snowflake identifier"):
            L.snowflake_ident('a"; drop table x')
        with self.assertRaisesRegex(L.CdaError, "not a batch id"):
            L.stage_table("pc_x", "nope")

    def test_stage_statements(self):
        self.assertEqual(
            L.stage_statements("pc_x", self.B, [("id", "bigint"), ("BATCH_ID", "string")]),
            ['CREATE OR REPLACE TRANSIENT TABLE BASE.PC_X__STG_20261127T020000Z ("ID" NUMBER(19,0), "BATCH_ID" VARCHAR)'],
        )
        with self.assertRaises(L.CdaError):
            L.stage_statements("pc_x", self.B, [])

    def test_merge_statements(self):
        sql = L.merge_statements("pc_x", self.B, self.COLS)
        stage = "BASE.PC_X__STG_20261127T020000Z"
        self.assertEqual(sql[0], f"CREATE TABLE IF NOT EXISTS BASE.PC_X LIKE {stage}")
        self.assertEqual(sql[1], 'ALTER TABLE BASE.PC_X ADD COLUMN IF NOT EXISTS "ID" NUMBER(19,0)')
        self.assertEqual(sql[4], 'ALTER TABLE BASE.PC_X ADD COLUMN IF NOT EXISTS "AMOUNT" NUMBER(18,2)')
        self.assertEqual(
            sql[-2],
            f'MERGE INTO BASE.PC_X t USING {stage} s ON t."ID" IS NOT DISTINCT FROM s."ID" AND '
            't."GWCBI___SEQVAL_HEX" IS NOT DISTINCT FROM s."GWCBI___SEQVAL_HEX" AND '
            't."GWCBI___OPERATION" IS NOT DISTINCT FROM s."GWCBI___OPERATION" WHEN NOT MATCHED THEN INSERT '
            '("ID", "GWCBI___SEQVAL_HEX", "GWCBI___OPERATION", "AMOUNT", "CDA_TIMESTAMP", "BATCH_ID") VALUES '
            '(s."ID", s."GWCBI___SEQVAL_HEX", s."GWCBI___OPERATION", s."AMOUNT", s."CDA_TIMESTAMP", s."BATCH_ID")',
        )
        self.assertEqual(sql[-1], f"DROP TABLE IF EXISTS {stage}")
        self.assertEqual(len(sql), 1 + len(self.COLS) + 2)
        self.assertFalse(any(";" in s for s in sql))

    def test_merge_statement_errors(self):
        with self.assertRaisesRegex(L.CdaError, "merge key\\(s\\) GWCBI___SEQVAL_HEX"):
            L.merge_statements("pc_x", self.B, [c for c in self.COLS if c[0] != "gwcbi___seqval_hex"])
        with self.assertRaisesRegex(L.CdaError, "collide once upper-cased"):
            L.merge_statements("pc_x", self.B, self.COLS + [("Id", "bigint")])
        with self.assertRaisesRegex(L.CdaError, "lacks the BATCH_ID column"):
            L.merge_statements("pc_x", self.B, self.COLS[:-1])
        with self.assertRaisesRegex(L.CdaError, "no columns"):
            L.merge_statements("pc_x", self.B, [])
        with self.assertRaisesRegex(L.CdaError, "at least one merge key"):
            L.merge_statements("pc_x", self.B, self.COLS, merge_keys=())
        self.assertIn('ON t."AMOUNT" IS NOT DISTINCT FROM s."AMOUNT" WHEN', L.merge_statements("pc_x", self.B, self.COLS, merge_keys=("amount",))[-2])

    def test_reserved_columns(self):
        L.check_reserved_columns(["id", "amount"])
        with self.assertRaisesRegex(L.CdaError, "batch_id, cda_timestamp"):
            L.check_reserved_columns(["id", "cda_timestamp", "batch_id"])


if __name__ == "__main__":
    unittest.main()
