"""Glue job 1: Guidewire Cloud Data Access (CDA) -> enterprise data lake, raw zone.

Glue 4.0+ (Spark 3.3, Python 3.10). Started by the upstream Step Functions workflow once per
(batch, table) with these job arguments (all strings):

    --pipeline       pipeline name, e.g. policycenter
    --batch_id       <pipeline>-<yyyyMMdd>T<HHmmss>Z (docs/control-table.md)
    --table          CDA table (folder) name, e.g. pc_policyperiod
    --source_bucket  the Guidewire-owned CDA bucket (bare name)
    --source_prefix  key prefix holding manifest.json and the table folders, e.g. cda/pc
    --lake_bucket    the enterprise data-lake bucket (bare name)
    --watermark      newest CDA timestamp folder already loaded for the table; empty, "0" or
                     absent on the first load

What it does:

1. reads ``s3://<source_bucket>/<source_prefix>/manifest.json`` and validates the table's entry;
2. lists ``<dataFilesPath>/<schemaId>/`` for every schema id in the entry's ``schemaHistory``;
3. selects timestamp folders with ``watermark < folder <= lastSuccessfulWriteTimestamp`` (newer
   folders may still be being written by CDA and are never read), oldest first;
4. copies each folder's Parquet files, unchanged in content, to
   ``s3://<lake_bucket>/raw/<pipeline>/<table>/batch_id=<batch_id>/ts=<folder>/`` (overwrite,
   so a retry of the same batch replaces rather than duplicates) and counts the rows landed;
5. writes the result object to ``s3://<lake_bucket>/_runs/<pipeline>/<batch_id>/<table>.json``
   and prints it to the driver log. Glue has no return value: the workflow reads ``rows`` and
   ``watermark`` from that object (S3 GetObject) and records them on the table-load item and the
   ``WATERMARK#TABLE#<table>`` item of the control table. On failure a FAILED object (with the
   previous watermark, unchanged) is written before the run fails.

Job bookmarks must be disabled (``--job-bookmark-option job-bookmark-disable``): the watermark
from the control table drives incrementality. See glue/README.md.

All decisions live in ``cda_logic`` (deploy it with ``--extra-py-files``); this file only does
I/O. ``awsglue``, ``pyspark`` and ``boto3`` are imported inside ``main()`` so the module imports
on a plain interpreter.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from cda_logic import (
    CDA_TO_LAKE_ARGS,
    JOB_CDA_TO_LAKE,
    JOB_CDA_TO_LAKE_DETAIL,
    CdaToLakeArgs,
    build_result,
    folder_result,
    is_parquet_key,
    lake_batch_prefix,
    lake_folder_prefix,
    manifest_entry_for_table,
    manifest_key,
    next_watermark,
    optional_argv,
    result_json,
    result_key,
    s3_uri,
    schema_folder_prefix,
    select_folders,
    summary_of,
    table_source_prefix,
    timestamp_folder_names,
    timestamp_folder_prefix,
    utc_now_iso,
    validate_cda_to_lake_args,
)

LOG = logging.getLogger("cda_to_lake")


def list_common_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Immediate sub-folders of ``prefix`` (ListObjectsV2 with a ``/`` delimiter, paginated)."""
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return found


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def publish_result(s3: Any, bucket: str, key: str, result: dict[str, Any]) -> None:
    """Log the result object, then store it in the lake (bucket default encryption applies)."""
    body = result_json(result)
    print(f"CDA_TO_LAKE_RESULT {body}")  # driver stdout -> CloudWatch /aws-glue/jobs/output
    LOG.info("result s3://%s/%s: %s", bucket, key, body)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")


def publish_results(s3: Any, args: CdaToLakeArgs, result: dict[str, Any]) -> None:
    """The full result (with folders) for lake_to_snowflake, then the bounded summary the workflow reads."""
    detail_key = result_key(args.pipeline, args.batch_id, args.table, JOB_CDA_TO_LAKE_DETAIL)
    publish_result(s3, args.lake_bucket, detail_key, result)
    publish_result(s3, args.lake_bucket, result_key(args.pipeline, args.batch_id, args.table, JOB_CDA_TO_LAKE), summary_of(result, detail_key))


def run(args: CdaToLakeArgs, s3: Any, spark: Any, glue_run_id: str, started_at: str) -> dict[str, Any]:
    """Copy the new CDA folders of one table; return the SUCCEEDED result object."""
    body = s3.get_object(Bucket=args.source_bucket, Key=manifest_key(args.source_prefix))["Body"].read()
    entry = manifest_entry_for_table(body, args.table)
    table_prefix = table_source_prefix(entry, args.source_bucket, args.source_prefix)

    folders_by_schema = {}
    for schema_id in entry.schema_ids():
        parent = schema_folder_prefix(table_prefix, schema_id)
        folders_by_schema[schema_id] = timestamp_folder_names(
            list_common_prefixes(s3, args.source_bucket, parent), parent
        )
    selected = select_folders(folders_by_schema, args.watermark, entry.last_successful_write_timestamp)
    LOG.info(
        "table %s: watermark=%s lastSuccessfulWriteTimestamp=%s -> %d folder(s) to copy",
        args.table, args.watermark, entry.last_successful_write_timestamp, len(selected),
    )

    folders = []
    for folder in selected:
        source_prefix = timestamp_folder_prefix(table_prefix, folder)
        source_uri = s3_uri(args.source_bucket, source_prefix)
        target_uri = s3_uri(args.lake_bucket, lake_folder_prefix(args.pipeline, args.table, args.batch_id, folder))
        files = [s3_uri(args.source_bucket, k) for k in list_keys(s3, args.source_bucket, source_prefix) if is_parquet_key(k)]
        if not files:
            LOG.warning("%s holds no Parquet file; recorded with 0 rows", source_uri)
            rows = 0
        else:
            spark.read.parquet(*files).write.mode("overwrite").parquet(target_uri)
            rows = spark.read.parquet(target_uri).count()  # what actually landed
        LOG.info("copied %s -> %s (%d rows)", source_uri, target_uri, rows)
        folders.append(folder_result(folder, source_uri, target_uri, rows))

    previous = "" if args.watermark is None else str(args.watermark)
    return build_result(
        job=JOB_CDA_TO_LAKE,
        pipeline=args.pipeline,
        batch_id=args.batch_id,
        table=args.table,
        status="SUCCEEDED",
        rows=sum(f["rows"] for f in folders),
        lake_path=s3_uri(args.lake_bucket, lake_batch_prefix(args.pipeline, args.table, args.batch_id)),
        glue_run_id=glue_run_id,
        started_at=started_at,
        previous_watermark=previous,
        watermark=next_watermark(selected, args.watermark),
        folders=folders,
        extra={
            "manifestLastSuccessfulWriteTimestamp": str(entry.last_successful_write_timestamp),
            "manifestTotalProcessedRecordsCount": entry.total_processed_records_count,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    import boto3
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    resolved = getResolvedOptions(argv, ["JOB_NAME", *CDA_TO_LAKE_ARGS])
    resolved["watermark"] = optional_argv(argv, "watermark")  # optional: empty on a first load
    args = validate_cda_to_lake_args(resolved)
    glue_run_id = optional_argv(argv, "JOB_RUN_ID")
    started_at = utc_now_iso()

    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(resolved["JOB_NAME"], resolved)
    s3 = boto3.client("s3")
    try:
        result = run(args, s3, glue_context.spark_session, glue_run_id, started_at)
    except Exception as exc:
        previous = "" if args.watermark is None else str(args.watermark)
        failed = build_result(
            job=JOB_CDA_TO_LAKE,
            pipeline=args.pipeline,
            batch_id=args.batch_id,
            table=args.table,
            status="FAILED",
            rows=0,
            lake_path=s3_uri(args.lake_bucket, lake_batch_prefix(args.pipeline, args.table, args.batch_id)),
            glue_run_id=glue_run_id,
            started_at=started_at,
            previous_watermark=previous,
            error=f"{type(exc).__name__}: {exc}",
        )
        try:
            publish_results(s3, args, failed)
        except Exception:  # the original error matters more than the report
            LOG.exception("could not write the FAILED result object")
        raise

    publish_results(s3, args, result)
    job.commit()


if __name__ == "__main__":
    main()
