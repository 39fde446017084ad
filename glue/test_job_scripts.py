"""The job scripts' run() orchestration, driven with in-memory fakes of S3, Spark and Glue.

Standard-library unittest only: the fakes implement just the calls the scripts make, so these
tests also pin which S3 prefixes are listed, which files are read and where data is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cda_logic as L  # noqa: E402
import cda_to_lake  # noqa: E402
import lake_to_snowflake  # noqa: E402

SRC = "gw-cda-prod"
LAKE = "acme-lake-us-east-1"
BATCH = "policycenter-20261127T020000Z"


class NoSuchKey(Exception):
    pass


class FakeS3:
    class exceptions:  # noqa: N801 - mirrors boto3's client.exceptions
        NoSuchKey = NoSuchKey

    def __init__(self, objects):
        self.objects = dict(objects)  # (bucket, key) -> bytes
        self.listed = []

    def get_object(self, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            raise NoSuchKey(Key)
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def put_object(self, Bucket, Key, Body, ContentType):
        self.objects[(Bucket, Key)] = Body

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix, Delimiter=None):
        self.listed.append((Bucket, Prefix, Delimiter))
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
        if Delimiter:
            folders = sorted({Prefix + k[len(Prefix):].split("/", 1)[0] + "/" for k in keys if "/" in k[len(Prefix):]})
            files = [k for k in keys if "/" not in k[len(Prefix):]]
            yield {"CommonPrefixes": [{"Prefix": p} for p in folders], "Contents": [{"Key": k} for k in files]}
        else:
            yield {"Contents": [{"Key": k} for k in keys]}


class FakeFrame:
    def __init__(self, spark, paths):
        self.spark, self.paths = spark, paths
        self.write = self

    def mode(self, mode):
        self.spark.modes.append(mode)
        return self

    def parquet(self, target):
        self.spark.written[target] = sum(self.spark.rows[p] for p in self.paths)

    def count(self):
        return sum(self.spark.rows[p] for p in self.paths)


class FakeSpark:
    def __init__(self, rows):
        self.rows = dict(rows)  # s3 uri of a file -> row count
        self.written = {}
        self.modes = []
        self.read = self

    def parquet(self, *paths):
        for p in paths:
            if p in self.written:
                self.rows[p] = self.written[p]
        return FakeFrame(self, paths)


def cda_objects(manifest_doc):
    base = "cda/pc/pc_policyperiod"
    objs = {(SRC, "cda/pc/manifest.json"): json.dumps(manifest_doc).encode()}
    for key in (
        f"{base}/111/1000/part-0.parquet",        # <= watermark: already loaded
        f"{base}/111/2000/part-0.parquet",
        f"{base}/111/2000/part-1.parquet",
        f"{base}/111/2000/_SUCCESS",
        f"{base}/111/_temporary/0/x.parquet",     # not a timestamp folder
        f"{base}/222/3000/part-0.parquet",
        f"{base}/222/4000/part-0.parquet",        # newer than lastSuccessfulWriteTimestamp
        f"{base}/999/2500/part-0.parquet",        # schema id not in schemaHistory
    ):
        objs[(SRC, key)] = b"PAR1"
    return objs


MANIFEST = {
    "pc_policyperiod": {
        "lastSuccessfulWriteTimestamp": "3000",
        "totalProcessedRecordsCount": 99,
        "dataFilesPath": f"s3://{SRC}/cda/pc/pc_policyperiod",
        "schemaHistory": {"222": "2800", "111": "500"},
    }
}
ROWS = {
    f"s3://{SRC}/cda/pc/pc_policyperiod/111/2000/part-0.parquet": 4,
    f"s3://{SRC}/cda/pc/pc_policyperiod/111/2000/part-1.parquet": 6,
    f"s3://{SRC}/cda/pc/pc_policyperiod/222/3000/part-0.parquet": 5,
}


def cda_args(watermark="1000"):
    return L.validate_cda_to_lake_args(
        {"pipeline": "policycenter", "batch_id": BATCH, "table": "pc_policyperiod", "source_bucket": SRC,
         "source_prefix": "cda/pc", "lake_bucket": LAKE, "watermark": watermark}
    )


class CdaToLakeRunTest(unittest.TestCase):
    def test_copies_new_complete_folders_and_reports(self):
        s3, spark = FakeS3(cda_objects(MANIFEST)), FakeSpark(ROWS)
        result = cda_to_lake.run(cda_args(), s3, spark, "jr_1", "2026-11-27T02:00:05Z")

        prefix = f"s3://{LAKE}/raw/policycenter/pc_policyperiod/batch_id={BATCH}/"
        self.assertEqual(spark.written, {prefix + "ts=2000/": 10, prefix + "ts=3000/": 5})
        self.assertEqual(spark.modes, ["overwrite", "overwrite"])
        self.assertEqual((result["rows"], result["watermark"], result["previousWatermark"]), (15, "3000", "1000"))
        self.assertEqual([(f["schemaId"], f["timestamp"], f["rows"]) for f in result["folders"]], [("111", "2000", 10), ("222", "3000", 5)])
        self.assertEqual(result["lakePath"], prefix)
        self.assertEqual(result["manifestLastSuccessfulWriteTimestamp"], "3000")
        # only the schema ids of schemaHistory were listed, oldest schema first
        delimited = [p for _, p, d in s3.listed if d == "/"]
        self.assertEqual(delimited, ["cda/pc/pc_policyperiod/111/", "cda/pc/pc_policyperiod/222/"])

    def test_first_load_and_no_new_data(self):
        spark = FakeSpark({**ROWS, f"s3://{SRC}/cda/pc/pc_policyperiod/111/1000/part-0.parquet": 1})
        first = cda_to_lake.run(cda_args(""), FakeS3(cda_objects(MANIFEST)), spark, "jr", "t")
        self.assertEqual((first["rows"], first["watermark"], first["previousWatermark"]), (16, "3000", ""))

        spark = FakeSpark(ROWS)
        idle = cda_to_lake.run(cda_args("3000"), FakeS3(cda_objects(MANIFEST)), spark, "jr", "t")
        self.assertEqual((idle["rows"], idle["watermark"], idle["folders"]), (0, "3000", []))
        self.assertEqual(spark.written, {})

    def test_malformed_manifest_fails_before_any_copy(self):
        bad = {"pc_policyperiod": {**MANIFEST["pc_policyperiod"], "lastSuccessfulWriteTimestamp": "later"}}
        spark = FakeSpark(ROWS)
        with self.assertRaisesRegex(L.ManifestError, "lastSuccessfulWriteTimestamp"):
            cda_to_lake.run(cda_args(), FakeS3(cda_objects(bad)), spark, "jr", "t")
        self.assertEqual(spark.written, {})

    def test_publish_results_writes_the_detail_and_a_bounded_summary(self):
        s3 = FakeS3({})
        folders = [L.folder_result(L.TimestampFolder(1000 + i, "111"), f"s3://gw/{i}/", f"s3://lake/{i}/", 1) for i in range(5000)]
        result = {"status": "SUCCEEDED", "rows": 5000, "watermark": "5999", "folders": folders}
        with contextlib.redirect_stdout(io.StringIO()):
            cda_to_lake.publish_results(s3, cda_args(), result)
        detail_key = f"_runs/policycenter/{BATCH}/detail/pc_policyperiod.json"
        self.assertEqual(len(json.loads(s3.objects[(LAKE, detail_key)])["folders"]), 5000)
        summary_body = s3.objects[(LAKE, f"_runs/policycenter/{BATCH}/pc_policyperiod.json")]
        summary = json.loads(summary_body)
        self.assertNotIn("folders", summary)
        self.assertEqual((summary["folderCount"], summary["detailKey"], summary["rows"]), (5000, detail_key, 5000))
        self.assertLess(len(summary_body), 2048, "the workflow's payload must not grow with the folder count")

    def test_publish_result_writes_the_documented_key(self):
        s3 = FakeS3({})
        key = L.result_key("policycenter", BATCH, "pc_policyperiod")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cda_to_lake.publish_result(s3, LAKE, key, {"rows": 3})
        self.assertEqual(out.getvalue(), 'CDA_TO_LAKE_RESULT {"rows":3}\n')  # the logged copy
        self.assertEqual(json.loads(s3.objects[(LAKE, f"_runs/policycenter/{BATCH}/pc_policyperiod.json")]), {"rows": 3})


# ---- lake_to_snowflake fakes ---------------------------------------------------------------


class Col:
    def __init__(self, value, type_="string"):
        self.value, self.type = value, type_

    def cast(self, type_):
        return Col(self.value, type_)


class FakeF:
    @staticmethod
    def lit(value):
        return Col(value, "string" if isinstance(value, str) else "int")


class Field:
    def __init__(self, name, type_):
        self.name = name
        self.dataType = type("T", (), {"simpleString": lambda _self, t=type_: t})()


class DF:
    def __init__(self, cols, rows):
        self.cols, self.rows = list(cols), rows  # cols: [(name, type)]

    @property
    def columns(self):
        return [n for n, _ in self.cols]

    @property
    def schema(self):
        return type("S", (), {"fields": [Field(n, t) for n, t in self.cols]})()

    def withColumn(self, name, col):
        return DF([c for c in self.cols if c[0] != name] + [(name, col.type)], self.rows)

    def unionByName(self, other, allowMissingColumns=False):
        assert allowMissingColumns
        names = self.columns
        return DF(self.cols + [c for c in other.cols if c[0] not in names], self.rows + other.rows)

    def toDF(self, *names):
        return DF([(n, t) for n, (_, t) in zip(names, self.cols, strict=True)], self.rows)

    def persist(self):
        return self

    def unpersist(self):
        return self

    def count(self):
        return self.rows


class FakeGlue:
    def __init__(self, frames):
        self.frames = frames  # lake uri -> DF
        self.spark_session = type("Spark", (), {})()
        self.spark_session.read = type("R", (), {"parquet": lambda _self, uri: self.frames[uri]})()
        self.write_dynamic_frame = self
        self.writes = []

    def from_options(self, frame, connection_type, connection_options):
        self.writes.append((frame, connection_type, connection_options))


class FakeDynamicFrame:
    @staticmethod
    def fromDF(df, glue_context, name):
        return ("dyf", df, name)


CDA_COLS = [("id", "bigint"), ("gwcbi___seqval_hex", "string"), ("gwcbi___operation", "int")]


def upstream_result(folders):
    return L.build_result(
        job=L.JOB_CDA_TO_LAKE, pipeline="policycenter", batch_id=BATCH, table="pc_policyperiod",
        status="SUCCEEDED", rows=sum(f["rows"] for f in folders), lake_path="s3://x-lake/raw/",
        previous_watermark="", watermark="3000", folders=folders,
    )


def sf_args():
    return L.validate_lake_to_snowflake_args(
        {"pipeline": "policycenter", "batch_id": BATCH, "table": "pc_policyperiod", "lake_bucket": LAKE,
         "snowflake_connection": "snowflake-base", "fence_region": "us-east-1", "fence_epoch": "3"}
    )


class LakeToSnowflakeRunTest(unittest.TestCase):
    T1 = f"s3://{LAKE}/raw/policycenter/pc_policyperiod/batch_id={BATCH}/ts=2000/"
    T2 = f"s3://{LAKE}/raw/policycenter/pc_policyperiod/batch_id={BATCH}/ts=3000/"

    def setup(self, frames, folders):
        key = L.result_key("policycenter", BATCH, "pc_policyperiod", L.JOB_CDA_TO_LAKE_DETAIL)
        s3 = FakeS3({(LAKE, key): L.result_json(upstream_result(folders)).encode()})
        return s3, FakeGlue(frames)

    def folders(self, r1=10, r2=5):
        return [
            L.folder_result(L.TimestampFolder(2000, "111"), "s3://gw-cda-prod/a/", self.T1, r1),
            L.folder_result(L.TimestampFolder(3000, "222"), "s3://gw-cda-prod/b/", self.T2, r2),
        ]

    def test_loads_stage_then_merges(self):
        frames = {self.T1: DF(CDA_COLS, 10), self.T2: DF(CDA_COLS + [("newcol", "string")], 5)}
        s3, glue = self.setup(frames, self.folders())
        result = lake_to_snowflake.run(sf_args(), s3, glue, FakeDynamicFrame, FakeF, "jr_2", "t0")

        self.assertEqual((result["rows"], result["upstreamRows"], result["target"]), (15, 15, "BASE.PC_POLICYPERIOD"))
        self.assertEqual(len(glue.writes), 1)
        (_, df, _), connection_type, options = glue.writes[0]
        self.assertEqual(connection_type, "snowflake")
        self.assertEqual(options["connectionName"], "snowflake-base")
        self.assertEqual(options["sfSchema"], "BASE")
        self.assertEqual(options["dbtable"], "PC_POLICYPERIOD__STG_20261127T020000Z")
        self.assertEqual(df.columns, ["ID", "GWCBI___SEQVAL_HEX", "GWCBI___OPERATION", "CDA_TIMESTAMP", "NEWCOL", "BATCH_ID"])
        guard = L.fence_guard_sql("us-east-1", 3)
        pre = options["preactions"].split(";")
        self.assertEqual(pre[0], guard)  # the fence first, in the connector's session
        self.assertTrue(pre[1].startswith("CREATE OR REPLACE TRANSIENT TABLE BASE.PC_POLICYPERIOD__STG_"))
        post = options["postactions"].split(";")
        self.assertEqual(post[0], guard)  # and again before the MERGE, same session
        self.assertEqual([i for i, sql in enumerate(post) if sql == guard], [0])
        self.assertTrue(post[-2].startswith("MERGE INTO BASE.PC_POLICYPERIOD t USING"))
        self.assertIn('ALTER TABLE BASE.PC_POLICYPERIOD ADD COLUMN IF NOT EXISTS "NEWCOL" VARCHAR', post)
        self.assertFalse(any(k in json.dumps(options).lower() for k in ("password", "sfuser", "private_key")))

    def test_stale_fence_from_the_connector_fails_the_job_with_stale_fence(self):
        s3, glue = self.setup({self.T1: DF(CDA_COLS, 10), self.T2: DF(CDA_COLS, 5)}, self.folders())

        def refuse(frame, connection_type, connection_options):
            raise RuntimeError("net.snowflake.client.jdbc.SnowflakeSQLException: Numeric value 'STALE_FENCE: this load "
                               "carries region us-east-1 epoch 3, CONTROL.FENCE holds 1 row(s), region us-west-1 epoch 4' is not recognized")

        glue.from_options = refuse
        with self.assertRaisesRegex(L.StaleFenceError, r"^STALE_FENCE: this load carries region us-east-1 epoch 3, .* region us-west-1 epoch 4\. The fence moved"):
            lake_to_snowflake.run(sf_args(), s3, glue, FakeDynamicFrame, FakeF, "jr", "t")

        def other(frame, connection_type, connection_options):
            raise RuntimeError("SnowflakeSQLException: warehouse suspended")

        glue.from_options = other
        with self.assertRaisesRegex(RuntimeError, "warehouse suspended"):
            lake_to_snowflake.run(sf_args(), s3, glue, FakeDynamicFrame, FakeF, "jr", "t")

    def test_row_count_mismatch_refuses_to_load(self):
        s3, glue = self.setup({self.T1: DF(CDA_COLS, 9), self.T2: DF(CDA_COLS, 5)}, self.folders())
        with self.assertRaisesRegex(L.CdaError, "lake holds 14 rows .* reported 15"):
            lake_to_snowflake.run(sf_args(), s3, glue, FakeDynamicFrame, FakeF, "jr", "t")
        self.assertEqual(glue.writes, [])

    def test_no_rows_means_no_snowflake_write(self):
        s3, glue = self.setup({}, self.folders(0, 0))
        result = lake_to_snowflake.run(sf_args(), s3, glue, FakeDynamicFrame, FakeF, "jr", "t")
        self.assertEqual(result["rows"], 0)
        self.assertEqual(glue.writes, [])

    def test_missing_upstream_result(self):
        with self.assertRaisesRegex(L.CdaError, "run cda_to_lake for this batch first"):
            lake_to_snowflake.run(sf_args(), FakeS3({}), FakeGlue({}), FakeDynamicFrame, FakeF, "jr", "t")

    def test_reserved_source_column(self):
        s3, glue = self.setup({self.T1: DF(CDA_COLS + [("batch_id", "string")], 10), self.T2: DF(CDA_COLS, 5)}, self.folders())
        with self.assertRaisesRegex(L.CdaError, "collide with the load's own columns"):
            lake_to_snowflake.run(sf_args(), s3, glue, FakeDynamicFrame, FakeF, "jr", "t")


if __name__ == "__main__":
    unittest.main()
