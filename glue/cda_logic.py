"""Pure logic shared by the two Glue jobs (``cda_to_lake.py`` and ``lake_to_snowflake.py``).

Nothing here imports ``pyspark``, ``awsglue`` or ``boto3``: the module (and its tests,
``test_cda_logic.py``) runs on a plain Python 3.11 interpreter.

Guidewire Cloud Data Access (CDA) format, as this module assumes it
-------------------------------------------------------------------
This follows Guidewire's open-source reference reader (github.com/Guidewire/cda-client:
``ManifestReader.scala``, ``TableReader.scala`` and its ``sample-manifest.json``):

* ``<source_prefix>/manifest.json`` is ONE JSON object keyed by table name. Each value is::

      "pc_policyperiod": {
        "lastSuccessfulWriteTimestamp": "1562112543749",   # epoch millis, a string
        "totalProcessedRecordsCount": 240000,               # cumulative since the table began
        "dataFilesPath": "s3://<bucket>/<prefix>/pc_policyperiod",
        "schemaHistory": {"123456789": "1562112543719",     # schema id (fingerprint) ->
                          "987654321": "1562112543748"}     #   millis it first appeared
      }

  Guidewire writes the timestamps as strings of digits; this module also accepts JSON
  integers (some producers and copies of the manifest do that) but nothing else.
* Data lives under ``<dataFilesPath>/<schemaId>/<timestampMillis>/*.parquet``; with the usual
  layout ``dataFilesPath`` is ``s3://<source_bucket>/<source_prefix>/<table>``. The job uses
  ``dataFilesPath`` (it is what CDA publishes) and refuses one outside ``--source_bucket`` /
  ``--source_prefix``, because the cross-account grant covers only that prefix.
* A timestamp folder is complete only if its timestamp is ``<= lastSuccessfulWriteTimestamp``;
  newer folders may still be being written and must not be read (the reference reader's
  ``isTableS3LocationWithTimestampSafeToCopy``).
* The schema ids to look under are the keys of ``schemaHistory``. A schema folder that is not
  (yet) in ``schemaHistory`` is not looked at, as in the reference reader.
* Folder timestamps only grow: CDA never publishes a folder older than one it already published
  as complete. That is what makes "newest folder loaded" a sufficient watermark.
* ``totalProcessedRecordsCount`` is cumulative, so it cannot be reconciled with the rows of one
  increment; it is carried in the result object for information only.

Watermark
---------
The watermark (control-table item ``WATERMARK#TABLE#<table>``, see docs/control-table.md) is the
newest CDA timestamp folder (epoch millis, as a string of digits) loaded for the table. Empty
(first load) means "everything". ``"0"`` behaves the same, for callers that cannot pass an empty
argument. A folder is selected when ``watermark < folder <= lastSuccessfulWriteTimestamp``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class CdaError(ValueError):
    """Base class: every error this module raises says what is wrong and where."""


class ManifestError(CdaError):
    """The CDA manifest is not what CDA publishes (bad JSON, missing field, wrong type)."""


class ArgumentError(CdaError):
    """A Glue job argument is missing or malformed."""


class S3UriError(CdaError):
    """A string is not an ``s3://bucket/key`` URI."""


# --------------------------------------------------------------------------------------------
# Names and patterns (kept in step with contracts/pipeline-name.ts and regions/schema.ts;
# tests/contracts.test.ts checks the pipeline-name rule)
# --------------------------------------------------------------------------------------------

PIPELINE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")
TABLE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
BATCH_ID_PATTERN = re.compile(r"^(?P<pipeline>[a-z][a-z0-9-]*)-(?P<stamp>\d{8}T\d{6}Z)$")
# S3 bucket naming rules (general purpose buckets): 3-63 chars, lowercase letters, digits,
# dots and hyphens, starting and ending with a letter or digit.
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DIGITS = re.compile(r"^\d+$")
# Glue connection names: letters, digits, and a few separators; 1-255 chars.
CONNECTION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,254}$")

MANIFEST_FILE = "manifest.json"
RAW_ZONE = "raw"
RUNS_PREFIX = "_runs"
RESULT_SCHEMA_VERSION = 1

JOB_CDA_TO_LAKE = "cda_to_lake"
JOB_LAKE_TO_SNOWFLAKE = "lake_to_snowflake"
# cda_to_lake's full result, with the per-folder list: it can outgrow Step Functions' 256 KiB state
# limit on a long first load, so the workflow reads only the summary (see summary_of).
JOB_CDA_TO_LAKE_DETAIL = "cda_to_lake_detail"
RESULT_STATUSES = ("SUCCEEDED", "FAILED")


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestEntry:
    table: str
    last_successful_write_timestamp: int
    total_processed_records_count: int
    data_files_path: str
    schema_history: Mapping[str, int] = field(default_factory=dict)

    def schema_ids(self) -> list[str]:
        """Schema ids ordered by the time they first appeared (then by id, for stability)."""
        return [sid for sid, _ in sorted(self.schema_history.items(), key=lambda kv: (kv[1], kv[0]))]


def _millis(value: Any, where: str) -> int:
    """A CDA timestamp: a string of digits (what CDA writes) or a non-negative JSON integer."""
    if isinstance(value, bool):  # bool is an int subclass; true/false is never a timestamp
        raise ManifestError(f"{where} must be epoch milliseconds (a string of digits), got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ManifestError(f"{where} must not be negative, got {value}")
        return value
    if isinstance(value, str) and DIGITS.match(value):
        return int(value)
    raise ManifestError(
        f"{where} must be epoch milliseconds (a string of digits), got {type(value).__name__} {value!r}"
    )


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ManifestError(f"{where} must be a whole number, got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        if not DIGITS.match(value):
            raise ManifestError(f"{where} must be a whole number, got {value!r}")
        value = int(value)
    if value < 0:
        raise ManifestError(f"{where} must not be negative, got {value}")
    return value


REQUIRED_ENTRY_FIELDS = (
    "lastSuccessfulWriteTimestamp",
    "totalProcessedRecordsCount",
    "dataFilesPath",
    "schemaHistory",
)


def parse_manifest_entry(table: str, raw: Any) -> ManifestEntry:
    """Validate one table's manifest entry and return it typed."""
    where = f"manifest entry {table!r}"
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a JSON object, got {type(raw).__name__}")
    missing = [name for name in REQUIRED_ENTRY_FIELDS if name not in raw]
    if missing:
        raise ManifestError(f"{where} is missing {', '.join(missing)}")

    last = _millis(raw["lastSuccessfulWriteTimestamp"], f"{where}: lastSuccessfulWriteTimestamp")
    total = _count(raw["totalProcessedRecordsCount"], f"{where}: totalProcessedRecordsCount")

    path = raw["dataFilesPath"]
    if not isinstance(path, str) or not path.strip():
        raise ManifestError(f"{where}: dataFilesPath must be a non-empty string, got {path!r}")
    try:
        split_s3_uri(path)
    except S3UriError as exc:
        raise ManifestError(f"{where}: dataFilesPath {exc}") from None

    history_raw = raw["schemaHistory"]
    if not isinstance(history_raw, dict):
        raise ManifestError(
            f"{where}: schemaHistory must be an object of schema id -> timestamp, "
            f"got {type(history_raw).__name__}"
        )
    if not history_raw:
        raise ManifestError(f"{where}: schemaHistory is empty, so there is no schema folder to read")
    history: dict[str, int] = {}
    for schema_id, ts in history_raw.items():
        if not schema_id or "/" in schema_id:
            raise ManifestError(f"{where}: schemaHistory has an unusable schema id {schema_id!r}")
        history[schema_id] = _millis(ts, f"{where}: schemaHistory[{schema_id!r}]")

    return ManifestEntry(
        table=table,
        last_successful_write_timestamp=last,
        total_processed_records_count=total,
        data_files_path=path,
        schema_history=history,
    )


def load_manifest_json(text: str | bytes) -> dict[str, Any]:
    """Decode manifest.json; it must be a JSON object keyed by table name."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"manifest.json is not UTF-8: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError(
            f"manifest.json must be a JSON object keyed by table name, got {type(doc).__name__}"
        )
    return doc


def parse_manifest(text: str | bytes) -> dict[str, ManifestEntry]:
    """Parse and validate EVERY entry of a manifest (strict; used for checks and tests)."""
    doc = load_manifest_json(text)
    return {table: parse_manifest_entry(table, raw) for table, raw in doc.items()}


def manifest_entry_for_table(text: str | bytes, table: str) -> ManifestEntry:
    """Parse the manifest and validate only ``table``'s entry.

    The job loads one table; a malformed entry for some other table must not block it.
    """
    doc = load_manifest_json(text)
    if table not in doc:
        known = ", ".join(sorted(doc)[:20]) or "none"
        raise ManifestError(f"table {table!r} is not in manifest.json (tables listed: {known})")
    return parse_manifest_entry(table, doc[table])


# --------------------------------------------------------------------------------------------
# Watermark and folder selection
# --------------------------------------------------------------------------------------------


def parse_watermark(value: str | None) -> int | None:
    """``""``/``None`` -> None (first load); a string of digits -> int; anything else -> error."""
    if value is None:
        return None
    value = value.strip()
    if value == "":
        return None
    if not DIGITS.match(value):
        raise ArgumentError(
            f"--watermark must be empty or a CDA timestamp folder (epoch millis, digits only), got {value!r}"
        )
    return int(value)


@dataclass(frozen=True, order=True)
class TimestampFolder:
    """One CDA timestamp folder. Ordered by (timestamp, schema_id)."""

    timestamp: int
    schema_id: str


def timestamp_folder_names(common_prefixes: Iterable[str], parent_prefix: str) -> list[str]:
    """Child folder names from an S3 ListObjectsV2 ``CommonPrefixes`` listing of ``parent_prefix``.

    ``common_prefixes`` are keys such as ``cda/pc_x/123/1562112543749/``. Prefixes not under
    ``parent_prefix`` are ignored. Names are returned as listed (numeric filtering is
    ``select_folders``' job).
    """
    parent = parent_prefix if parent_prefix.endswith("/") else parent_prefix + "/"
    names = []
    for prefix in common_prefixes:
        if not prefix.startswith(parent):
            continue
        name = prefix[len(parent):].rstrip("/")
        if name and "/" not in name:
            names.append(name)
    return names


def select_folders(
    folders_by_schema: Mapping[str, Iterable[str | int]],
    watermark: int | None,
    last_successful_write_timestamp: int,
) -> list[TimestampFolder]:
    """The folders to load: ``watermark < ts <= lastSuccessfulWriteTimestamp``, oldest first.

    ``folders_by_schema`` maps schema id -> folder names found under it. Names that are not
    all digits (``_temporary``, ``.spark-staging``, stray files) are ignored. Duplicates collapse.
    """
    low = -1 if watermark is None else watermark
    chosen: set[TimestampFolder] = set()
    for schema_id, names in folders_by_schema.items():
        for name in names:
            if isinstance(name, bool):
                continue
            if isinstance(name, int):
                ts = name
            elif isinstance(name, str) and DIGITS.match(name):
                ts = int(name)
            else:
                continue
            if low < ts <= last_successful_write_timestamp:
                chosen.add(TimestampFolder(timestamp=ts, schema_id=schema_id))
    return sorted(chosen)


def next_watermark(selected: Sequence[TimestampFolder], previous: int | None) -> str:
    """The watermark after loading ``selected``: the newest folder, else the previous one."""
    candidates = [f.timestamp for f in selected]
    if previous is not None:
        candidates.append(previous)
    return str(max(candidates)) if candidates else ""


def is_parquet_key(key: str) -> bool:
    """A data file CDA wrote: ``*.parquet`` and not a hidden/temporary object."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith(".parquet") and not name.startswith(("_", "."))


# --------------------------------------------------------------------------------------------
# S3 URIs and paths
# --------------------------------------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``. The key may be empty (bucket root)."""
    if not isinstance(uri, str):
        raise S3UriError(f"is not a string: {uri!r}")
    if not uri.startswith("s3://"):
        raise S3UriError(f"must start with s3://, got {uri!r}")
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise S3UriError(f"has no bucket name: {uri!r}")
    if not BUCKET_PATTERN.match(bucket) or ".." in bucket:
        raise S3UriError(f"has an invalid bucket name {bucket!r}: {uri!r}")
    return bucket, key


def s3_uri(bucket: str, key: str = "") -> str:
    validate_bucket(bucket, "bucket")
    return f"s3://{bucket}/{key.lstrip('/')}"


def join_key(*parts: str) -> str:
    """Join S3 key parts with single slashes; empty parts vanish. No leading slash."""
    cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
    return "/".join(cleaned)


def as_prefix(key: str) -> str:
    """A key prefix that names a folder: ends with exactly one slash ('' stays '')."""
    key = key.strip("/")
    return key + "/" if key else ""


def manifest_key(source_prefix: str) -> str:
    return join_key(source_prefix, MANIFEST_FILE)


def table_source_prefix(entry: ManifestEntry, source_bucket: str, source_prefix: str) -> str:
    """The key prefix (ending in ``/``) of the table's data, from ``dataFilesPath``.

    Raises if ``dataFilesPath`` points outside ``source_bucket``/``source_prefix``: the job role
    is granted only that prefix, and reading elsewhere would be a misconfiguration.
    """
    bucket, key = split_s3_uri(entry.data_files_path)
    if bucket != source_bucket:
        raise ManifestError(
            f"manifest entry {entry.table!r}: dataFilesPath {entry.data_files_path!r} is in bucket "
            f"{bucket!r}, not --source_bucket {source_bucket!r}"
        )
    key = as_prefix(key)
    root = as_prefix(source_prefix)
    if not key.startswith(root) or key == root:
        raise ManifestError(
            f"manifest entry {entry.table!r}: dataFilesPath {entry.data_files_path!r} is not under "
            f"--source_prefix {source_prefix!r}"
        )
    return key


def schema_folder_prefix(table_prefix: str, schema_id: str) -> str:
    return as_prefix(join_key(table_prefix, schema_id))


def timestamp_folder_prefix(table_prefix: str, folder: TimestampFolder) -> str:
    return as_prefix(join_key(table_prefix, folder.schema_id, str(folder.timestamp)))


def lake_batch_prefix(pipeline: str, table: str, batch_id: str) -> str:
    """``raw/<pipeline>/<table>/batch_id=<id>/``"""
    return as_prefix(join_key(RAW_ZONE, pipeline, table, f"batch_id={batch_id}"))


def lake_folder_prefix(pipeline: str, table: str, batch_id: str, folder: TimestampFolder | int) -> str:
    """``raw/<pipeline>/<table>/batch_id=<id>/ts=<folder>/``"""
    ts = folder.timestamp if isinstance(folder, TimestampFolder) else folder
    return as_prefix(join_key(lake_batch_prefix(pipeline, table, batch_id), f"ts={ts}"))


def result_key(pipeline: str, batch_id: str, table: str, job: str = JOB_CDA_TO_LAKE) -> str:
    """Where a job writes its result object.

    * cda_to_lake:       ``_runs/<pipeline>/<batch_id>/<table>.json``
    * lake_to_snowflake: ``_runs/<pipeline>/<batch_id>/snowflake/<table>.json``
    """
    if job == JOB_CDA_TO_LAKE:
        return join_key(RUNS_PREFIX, pipeline, batch_id, f"{table}.json")
    if job == JOB_LAKE_TO_SNOWFLAKE:
        return join_key(RUNS_PREFIX, pipeline, batch_id, "snowflake", f"{table}.json")
    if job == JOB_CDA_TO_LAKE_DETAIL:
        return join_key(RUNS_PREFIX, pipeline, batch_id, "detail", f"{table}.json")
    raise CdaError(f"unknown job {job!r}; expected {JOB_CDA_TO_LAKE!r} or {JOB_LAKE_TO_SNOWFLAKE!r}")


# --------------------------------------------------------------------------------------------
# Result object
# --------------------------------------------------------------------------------------------


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def folder_result(folder: TimestampFolder, source_uri: str, target_uri: str, rows: int) -> dict[str, Any]:
    _check_rows(rows, f"rows of folder {folder.timestamp}")
    return {
        "schemaId": folder.schema_id,
        "timestamp": str(folder.timestamp),
        "source": source_uri,
        "target": target_uri,
        "rows": rows,
    }


def _check_rows(rows: Any, what: str) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise CdaError(f"{what} must be a non-negative integer, got {rows!r}")


def build_result(
    *,
    job: str,
    pipeline: str,
    batch_id: str,
    table: str,
    status: str,
    rows: int,
    lake_path: str,
    glue_run_id: str = "",
    started_at: str = "",
    completed_at: str | None = None,
    previous_watermark: str | None = None,
    watermark: str | None = None,
    folders: Sequence[Mapping[str, Any]] = (),
    target: str | None = None,
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON result object a job writes to S3 and logs (schema in glue/README.md)."""
    if job not in (JOB_CDA_TO_LAKE, JOB_LAKE_TO_SNOWFLAKE):
        raise CdaError(f"unknown job {job!r}")
    if status not in RESULT_STATUSES:
        raise CdaError(f"status must be one of {', '.join(RESULT_STATUSES)}, got {status!r}")
    _check_rows(rows, "rows")
    folder_rows = sum(int(f["rows"]) for f in folders)
    if folders and status == "SUCCEEDED" and folder_rows != rows:
        raise CdaError(f"rows ({rows}) differs from the sum of folder rows ({folder_rows})")
    if status == "FAILED" and not error:
        raise CdaError("a FAILED result must carry an error message")

    result: dict[str, Any] = {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "job": job,
        "pipeline": pipeline,
        "batchId": batch_id,
        "table": table,
        "status": status,
        "rows": rows,
        "lakePath": lake_path,
        "glueRunId": glue_run_id,
        "startedAt": started_at,
        "completedAt": completed_at or utc_now_iso(),
    }
    if job == JOB_CDA_TO_LAKE:
        result["previousWatermark"] = previous_watermark or ""
        # On failure the watermark does not move.
        result["watermark"] = (watermark if status == "SUCCEEDED" else previous_watermark) or ""
        result["folders"] = [dict(f) for f in folders]
    if target is not None:
        result["target"] = target
    if error:
        result["error"] = error[:4000]
    if extra:
        clash = set(extra) & set(result)
        if clash:
            raise CdaError(f"extra fields would overwrite {', '.join(sorted(clash))}")
        result.update(extra)
    return result


def summary_of(result: Mapping[str, Any], detail_key: str) -> dict[str, Any]:
    """The result the workflow reads: everything but the per-folder list, whose size grows with
    the number of CDA folders (a 256 KiB state payload overflows in Step Functions, uncatchably)."""
    summary = {k: v for k, v in result.items() if k != "folders"}
    summary["folderCount"] = len(result.get("folders", []))
    summary["detailKey"] = detail_key
    return summary


def result_json(result: Mapping[str, Any]) -> str:
    return json.dumps(result, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Job arguments
# --------------------------------------------------------------------------------------------

CDA_TO_LAKE_ARGS = ("pipeline", "batch_id", "table", "source_bucket", "source_prefix", "lake_bucket")
CDA_TO_LAKE_OPTIONAL_ARGS = ("watermark",)
LAKE_TO_SNOWFLAKE_ARGS = (
    "pipeline", "batch_id", "table", "lake_bucket", "snowflake_connection", "fence_region", "fence_epoch",
)


@dataclass(frozen=True)
class CdaToLakeArgs:
    pipeline: str
    batch_id: str
    table: str
    source_bucket: str
    source_prefix: str
    lake_bucket: str
    watermark: int | None


@dataclass(frozen=True)
class LakeToSnowflakeArgs:
    pipeline: str
    batch_id: str
    table: str
    lake_bucket: str
    snowflake_connection: str
    # The claim's fence (the upstream workflow passes the DynamoDB fence it started under).
    fence_region: str
    fence_epoch: int


def validate_bucket(value: str, name: str) -> str:
    if not isinstance(value, str) or not BUCKET_PATTERN.match(value) or ".." in value:
        raise ArgumentError(
            f"--{name} must be a bare S3 bucket name (no s3://, no slash), got {value!r}"
        )
    return value


def validate_batch_id(batch_id: str, pipeline: str) -> str:
    """``<pipeline>-<yyyyMMdd>T<HHmmss>Z`` for this pipeline, a real UTC date-time."""
    m = BATCH_ID_PATTERN.match(batch_id or "")
    if not m:
        raise ArgumentError(
            f"--batch_id must look like <pipeline>-<yyyyMMdd>T<HHmmss>Z (e.g. {pipeline}-20261127T020000Z), "
            f"got {batch_id!r}"
        )
    if m.group("pipeline") != pipeline:
        raise ArgumentError(f"--batch_id {batch_id!r} does not belong to --pipeline {pipeline!r}")
    try:
        datetime.strptime(m.group("stamp"), "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise ArgumentError(f"--batch_id {batch_id!r} does not carry a valid UTC date-time") from None
    return batch_id


def _require(args: Mapping[str, Any], names: Sequence[str]) -> None:
    missing = [n for n in names if args.get(n) is None or str(args.get(n)).strip() == ""]
    if missing:
        raise ArgumentError("missing job argument(s): " + ", ".join("--" + n for n in missing))


def _common(args: Mapping[str, Any]) -> tuple[str, str, str]:
    pipeline = str(args["pipeline"]).strip()
    if not PIPELINE_PATTERN.match(pipeline):
        raise ArgumentError(
            f"--pipeline must be 2-24 lowercase letters, digits or hyphens starting with a letter, got {pipeline!r}"
        )
    table = str(args["table"]).strip()
    if not TABLE_PATTERN.match(table):
        raise ArgumentError(f"--table must be a lowercase CDA table name (e.g. pc_policyperiod), got {table!r}")
    batch_id = validate_batch_id(str(args["batch_id"]).strip(), pipeline)
    return pipeline, batch_id, table


def validate_cda_to_lake_args(args: Mapping[str, Any]) -> CdaToLakeArgs:
    _require(args, CDA_TO_LAKE_ARGS)
    pipeline, batch_id, table = _common(args)
    source_prefix = str(args["source_prefix"]).strip().strip("/")
    if source_prefix.startswith("s3:") or "//" in source_prefix:
        raise ArgumentError(f"--source_prefix must be a key prefix inside --source_bucket, got {source_prefix!r}")
    source_bucket = validate_bucket(str(args["source_bucket"]).strip(), "source_bucket")
    lake_bucket = validate_bucket(str(args["lake_bucket"]).strip(), "lake_bucket")
    if source_bucket == lake_bucket:
        raise ArgumentError("--source_bucket and --lake_bucket must differ (the CDA bucket is Guidewire's)")
    return CdaToLakeArgs(
        pipeline=pipeline,
        batch_id=batch_id,
        table=table,
        source_bucket=source_bucket,
        source_prefix=source_prefix,
        lake_bucket=lake_bucket,
        watermark=parse_watermark(args.get("watermark")),
    )


def validate_lake_to_snowflake_args(args: Mapping[str, Any]) -> LakeToSnowflakeArgs:
    _require(args, LAKE_TO_SNOWFLAKE_ARGS)
    pipeline, batch_id, table = _common(args)
    connection = str(args["snowflake_connection"]).strip()
    if not CONNECTION_PATTERN.match(connection):
        raise ArgumentError(f"--snowflake_connection must be a Glue connection name, got {connection!r}")
    region, epoch = validate_fence(args["fence_region"], args["fence_epoch"])
    return LakeToSnowflakeArgs(
        pipeline=pipeline,
        batch_id=batch_id,
        table=table,
        lake_bucket=validate_bucket(str(args["lake_bucket"]).strip(), "lake_bucket"),
        snowflake_connection=connection,
        fence_region=region,
        fence_epoch=epoch,
    )


# Same rule as handlers/fence-writer.ts (activeRegion) and the DynamoDB fence item.
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
EPOCH_PATTERN = re.compile(r"^[1-9]\d{0,17}$")


def validate_fence(region: Any, epoch: Any) -> tuple[str, int]:
    """The claim's fence as job arguments: a region name and a whole epoch >= 1 (the values are
    inlined into the guard SQL, so nothing else may pass)."""
    r = str(region).strip()
    if not REGION_PATTERN.match(r):
        raise ArgumentError(f"--fence_region must be an AWS region name such as us-east-1, got {region!r}")
    e = str(epoch).strip()
    if not EPOCH_PATTERN.match(e):
        raise ArgumentError(f"--fence_epoch must be a whole number >= 1 (the fence item's epoch), got {epoch!r}")
    return r, int(e)


def optional_argv(argv: Sequence[str], name: str, default: str = "") -> str:
    """Value of ``--name`` in ``argv`` (``--name value`` or ``--name=value``), else ``default``.

    ``awsglue.utils.getResolvedOptions`` fails on a missing option, so optional arguments such
    as ``--watermark`` (absent, or empty, on a first load) are read with this instead.
    """
    flag = f"--{name}"
    for i, token in enumerate(argv):
        if token == flag:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                return argv[i + 1]
            return ""
        if token.startswith(flag + "="):
            return token[len(flag) + 1:]
    return default


# --------------------------------------------------------------------------------------------
# Snowflake (job 2)
# --------------------------------------------------------------------------------------------

SNOWFLAKE_SCHEMA = "BASE"
BATCH_ID_COLUMN = "BATCH_ID"
CDA_TIMESTAMP_COLUMN = "CDA_TIMESTAMP"
# The identity of one CDA change record: the row id, the change sequence and the operation.
DEFAULT_MERGE_KEYS = ("ID", "GWCBI___SEQVAL_HEX", "GWCBI___OPERATION")
SNOWFLAKE_IDENT = re.compile(r"^[A-Z_][A-Z0-9_$]{0,254}$")

_SPARK_TO_SNOWFLAKE = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "byte": "NUMBER(3,0)",
    "tinyint": "NUMBER(3,0)",
    "short": "NUMBER(5,0)",
    "smallint": "NUMBER(5,0)",
    "integer": "NUMBER(10,0)",
    "int": "NUMBER(10,0)",
    "long": "NUMBER(19,0)",
    "bigint": "NUMBER(19,0)",
    "float": "FLOAT",
    "double": "FLOAT",
    "date": "DATE",
    "timestamp": "TIMESTAMP_NTZ",
    "timestamp_ntz": "TIMESTAMP_NTZ",
    "binary": "BINARY",
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


def snowflake_ident(name: str) -> str:
    """Spark column/table name -> the unquoted upper-case Snowflake identifier."""
    ident = name.upper()
    if not SNOWFLAKE_IDENT.match(ident):
        raise CdaError(f"{name!r} cannot be a plain Snowflake identifier")
    return ident


def quote_ident(name: str) -> str:
    return '"' + snowflake_ident(name) + '"'


def snowflake_type(spark_type: str) -> str:
    """A Spark ``simpleString`` type -> Snowflake column type (for ALTER TABLE ADD COLUMN)."""
    t = spark_type.strip().lower()
    if t in _SPARK_TO_SNOWFLAKE:
        return _SPARK_TO_SNOWFLAKE[t]
    m = _DECIMAL.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not (1 <= precision <= 38 and 0 <= scale <= precision):
            raise CdaError(f"decimal({precision},{scale}) does not fit Snowflake NUMBER (precision 1-38)")
        return f"NUMBER({precision},{scale})"
    if t.startswith(("array<", "map<", "struct<")):
        return "VARIANT"
    raise CdaError(f"no Snowflake type for Spark type {spark_type!r}")


def base_table(table: str) -> str:
    """``BASE.<TABLE>``"""
    return f"{SNOWFLAKE_SCHEMA}.{snowflake_ident(table)}"


def stage_table(table: str, batch_id: str) -> str:
    """Per-batch stage table name (no schema): ``<TABLE>__STG_<yyyyMMddTHHmmssZ>``."""
    m = BATCH_ID_PATTERN.match(batch_id)
    if not m:
        raise CdaError(f"not a batch id: {batch_id!r}")
    return snowflake_ident(f"{table}__stg_{m.group('stamp')}")


def merge_statements(
    table: str,
    batch_id: str,
    columns: Sequence[tuple[str, str]],
    merge_keys: Sequence[str] = DEFAULT_MERGE_KEYS,
) -> list[str]:
    """SQL run after the stage table is written (Snowflake connector ``postactions``).

    ``columns`` are (name, Spark simpleString type) of the staged DataFrame, which already
    carries ``BATCH_ID`` and ``CDA_TIMESTAMP``. The statements:

    1. create ``BASE.<TABLE>`` like the stage on the first load;
    2. add any column a newer CDA schema introduced (``ADD COLUMN IF NOT EXISTS``);
    3. insert-only MERGE on the change-record identity: a retry, or a folder delivered twice,
       does not duplicate rows; rows already present keep their original batch id;
    4. drop the stage.
    """
    if not columns:
        raise CdaError("no columns to load")
    names = [snowflake_ident(n) for n, _ in columns]
    if len(set(names)) != len(names):
        raise CdaError("column names collide once upper-cased: " + ", ".join(sorted(names)))
    for required in (BATCH_ID_COLUMN, CDA_TIMESTAMP_COLUMN):
        if required not in names:
            raise CdaError(f"the staged data lacks the {required} column")
    keys = [snowflake_ident(k) for k in merge_keys]
    if not keys:
        raise CdaError("at least one merge key is required")
    absent = [k for k in keys if k not in names]
    if absent:
        raise CdaError(
            f"merge key(s) {', '.join(absent)} are not columns of {table!r}; CDA tables carry "
            "ID, GWCBI___SEQVAL_HEX and GWCBI___OPERATION"
        )
    target = base_table(table)
    stage = f"{SNOWFLAKE_SCHEMA}.{stage_table(table, batch_id)}"
    statements = [f"CREATE TABLE IF NOT EXISTS {target} LIKE {stage}"]
    for name, spark_type in columns:
        statements.append(
            f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quote_ident(name)} {snowflake_type(spark_type)}"
        )
    on = " AND ".join(f"t.{quote_ident(k)} IS NOT DISTINCT FROM s.{quote_ident(k)}" for k in keys)
    cols = ", ".join(quote_ident(n) for n in names)
    vals = ", ".join(f"s.{quote_ident(n)}" for n in names)
    statements.append(
        f"MERGE INTO {target} t USING {stage} s ON {on} WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({vals})"
    )
    statements.append(f"DROP TABLE IF EXISTS {stage}")
    for sql in statements:
        if ";" in sql:
            raise CdaError("a statement contains ';', which would split the postactions list")
    return statements


def check_reserved_columns(names: Sequence[str]) -> None:
    """The load adds BATCH_ID and CDA_TIMESTAMP; a source column of that name would be lost."""
    clash = sorted({n for n in names if n.upper() in (BATCH_ID_COLUMN, CDA_TIMESTAMP_COLUMN)})
    if clash:
        raise CdaError(f"source column(s) {', '.join(clash)} collide with the load's own columns")


def stage_statements(table: str, batch_id: str, columns: Sequence[tuple[str, str]]) -> list[str]:
    """SQL run before the write (connector ``preactions``): a fresh, typed, transient stage
    whose column order is the DataFrame's, so a retry never appends to a half-written stage."""
    if not columns:
        raise CdaError("no columns to load")
    stage = f"{SNOWFLAKE_SCHEMA}.{stage_table(table, batch_id)}"
    cols = ", ".join(f"{quote_ident(n)} {snowflake_type(t)}" for n, t in columns)
    return [f"CREATE OR REPLACE TRANSIENT TABLE {stage} ({cols})"]


def check_upstream_result(doc: Any, pipeline: str, batch_id: str, table: str) -> dict[str, Any]:
    """Validate job 1's result object before job 2 loads what it describes.

    Returns the object. Raises unless it is a SUCCEEDED cda_to_lake result for exactly this
    pipeline, batch and table, whose folder rows add up to ``rows``.
    """
    if not isinstance(doc, dict):
        raise CdaError(f"the cda_to_lake result must be a JSON object, got {type(doc).__name__}")
    if doc.get("schemaVersion") != RESULT_SCHEMA_VERSION:
        raise CdaError(f"unsupported result schemaVersion {doc.get('schemaVersion')!r}")
    expected = {"job": JOB_CDA_TO_LAKE, "pipeline": pipeline, "batchId": batch_id, "table": table}
    for name, want in expected.items():
        if doc.get(name) != want:
            raise CdaError(f"the cda_to_lake result has {name}={doc.get(name)!r}, expected {want!r}")
    if doc.get("status") != "SUCCEEDED":
        raise CdaError(
            f"cda_to_lake did not succeed for {table} in {batch_id} (status {doc.get('status')!r}); "
            "nothing to load"
        )
    folders = doc.get("folders")
    if not isinstance(folders, list):
        raise CdaError("the cda_to_lake result has no folders list")
    _check_rows(doc.get("rows"), "rows")
    total = 0
    for f in folders:
        if not isinstance(f, dict) or "target" not in f or "timestamp" not in f:
            raise CdaError(f"malformed folder in the cda_to_lake result: {f!r}")
        _check_rows(f.get("rows"), f"rows of folder {f.get('timestamp')}")
        if not DIGITS.match(str(f["timestamp"])):
            raise CdaError(f"folder timestamp {f['timestamp']!r} is not epoch millis")
        split_s3_uri(f["target"])
        total += f["rows"]
    if total != doc["rows"]:
        raise CdaError(f"cda_to_lake result rows ({doc['rows']}) differ from its folders' sum ({total})")
    return doc


# --------------------------------------------------------------------------------------------
# Sink-side fence (issue I, D9): CONTROL.FENCE in the shared warehouse
# --------------------------------------------------------------------------------------------

FENCE_TABLE = "CONTROL.FENCE"
STALE_FENCE = "STALE_FENCE"


class StaleFenceError(CdaError):
    """The warehouse fence does not name the region and epoch this load was claimed under."""


def fence_guard_sql(region: str, epoch: int) -> str:
    """One statement that fails unless CONTROL.FENCE holds exactly one row naming ``region`` and
    ``epoch``. It runs in the connector's session (preactions, and postactions right before the
    MERGE), so the check and the write share a session; the failure is a cast error whose message
    carries ``STALE_FENCE`` and what the fence says. Plain SQL (no scripting), so the same text runs
    on Snowflake and on the local warehouse (fakesnow)."""
    region, epoch = validate_fence(region, epoch)
    ok = f"COUNT(*) = 1 AND COUNT_IF(REGION = '{region}' AND EPOCH = {epoch}) = 1"
    message = (
        f"'{STALE_FENCE}: this load carries region {region} epoch {epoch}, {FENCE_TABLE} holds ' "
        "|| CAST(COUNT(*) AS VARCHAR) || ' row(s), region ' || COALESCE(MAX(REGION), 'none') "
        "|| ' epoch ' || COALESCE(CAST(MAX(EPOCH) AS VARCHAR), 'none')"
    )
    return f"SELECT CAST(CASE WHEN {ok} THEN '1' ELSE {message} END AS INTEGER) AS FENCE_OK FROM {FENCE_TABLE}"


def stale_fence_error(error: BaseException, region: str, epoch: int) -> StaleFenceError | None:
    """The clear error for a connector failure caused by the guard, else None (a different failure)."""
    text = str(error)
    if STALE_FENCE not in text:
        return None
    found = re.search(rf"{STALE_FENCE}: [^'\"]*", text)
    detail = found.group(0) if found else f"{STALE_FENCE}: the warehouse fence does not name region {region} epoch {epoch}"
    return StaleFenceError(
        f"{detail}. The fence moved (failover) or this region is not active: nothing was merged; "
        "the batch belongs to the region the fence names"
    )
