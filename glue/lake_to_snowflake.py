"""Glue job 2: data-lake raw zone -> Snowflake base layer (``BASE.<TABLE>``).

Glue 4.0+, using Glue's native Snowflake connector (``connection_type="snowflake"``) through a
Glue connection of type SNOWFLAKE. Job arguments (all strings):

    --pipeline              pipeline name, e.g. policycenter
    --batch_id              <pipeline>-<yyyyMMdd>T<HHmmss>Z
    --table                 CDA table name, e.g. pc_policyperiod (loaded into BASE.PC_POLICYPERIOD)
    --lake_bucket           the enterprise data-lake bucket (bare name)
    --snowflake_connection  name of the Glue Snowflake connection (passed as ``connectionName``)
    --fence_region          the fence the batch was claimed under (the upstream workflow passes
    --fence_epoch           the DynamoDB fence item's activeRegion and epoch)

Credentials are NEVER job arguments: the Glue connection references a Secrets Manager secret
(``sfUser`` / ``sfPassword`` or key-pair ``pem_private_key``, plus ``sfDatabase``,
``sfWarehouse``, ``sfRole``), which Glue resolves with the job role's permission on that secret.

What it does:

1. reads job 1's result object ``s3://<lake>/_runs/<pipeline>/<batch_id>/<table>.json`` and
   refuses to run unless it is a SUCCEEDED cda_to_lake result for this pipeline/batch/table;
2. reads each ``ts=<folder>/`` it lists (``unionByName`` with missing columns allowed, since
   folders of different CDA schema ids may differ), adds ``BATCH_ID`` and ``CDA_TIMESTAMP``
   (the folder), upper-cases the column names, and checks the row count equals job 1's;
3. checks the warehouse fence (``CONTROL.FENCE``) in the connector's own session, first in the
   preactions and again in the postactions right before the MERGE: unless it names exactly
   ``--fence_region`` / ``--fence_epoch`` the statement fails, nothing is merged and the job fails
   with ``StaleFenceError: STALE_FENCE: ...`` (docs/fence-and-locks.md);
4. writes the rows to a per-batch transient stage ``BASE.<TABLE>__STG_<stamp>`` (preactions:
   ``CREATE OR REPLACE``), then, as postactions: creates ``BASE.<TABLE>`` on the first load,
   adds columns new CDA schemas introduced, runs an insert-only ``MERGE`` on the change-record
   identity (``ID``, ``GWCBI___SEQVAL_HEX``, ``GWCBI___OPERATION``) so retries do not
   duplicate rows, and drops the stage;
5. writes its result object to ``s3://<lake>/_runs/<pipeline>/<batch_id>/snowflake/<table>.json``
   and prints it to the driver log (``rows`` = rows staged and merged).

Job bookmarks: disabled; the batch id selects the data. See glue/README.md.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from functools import reduce
from typing import Any

from cda_logic import (
    BATCH_ID_COLUMN,
    CDA_TIMESTAMP_COLUMN,
    JOB_CDA_TO_LAKE_DETAIL,
    JOB_LAKE_TO_SNOWFLAKE,
    LAKE_TO_SNOWFLAKE_ARGS,
    SNOWFLAKE_SCHEMA,
    CdaError,
    LakeToSnowflakeArgs,
    base_table,
    build_result,
    check_reserved_columns,
    check_upstream_result,
    fence_guard_sql,
    lake_batch_prefix,
    merge_statements,
    optional_argv,
    result_json,
    result_key,
    s3_uri,
    snowflake_ident,
    stage_statements,
    stage_table,
    stale_fence_error,
    utc_now_iso,
    validate_lake_to_snowflake_args,
)

LOG = logging.getLogger("lake_to_snowflake")


def read_upstream_result(s3: Any, args: LakeToSnowflakeArgs) -> dict[str, Any]:
    # The full result: the summary the workflow reads has no per-folder list.
    key = result_key(args.pipeline, args.batch_id, args.table, JOB_CDA_TO_LAKE_DETAIL)
    try:
        body = s3.get_object(Bucket=args.lake_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise CdaError(f"s3://{args.lake_bucket}/{key} does not exist: run cda_to_lake for this batch first") from None
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CdaError(f"s3://{args.lake_bucket}/{key} is not JSON: {exc}") from None
    return check_upstream_result(doc, args.pipeline, args.batch_id, args.table)


def publish_result(s3: Any, bucket: str, key: str, result: dict[str, Any]) -> None:
    body = result_json(result)
    print(f"LAKE_TO_SNOWFLAKE_RESULT {body}")
    LOG.info("result s3://%s/%s: %s", bucket, key, body)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")


def run(
    args: LakeToSnowflakeArgs,
    s3: Any,
    glue_context: Any,
    DynamicFrame: Any,  # awsglue.dynamicframe.DynamicFrame, passed in by main()
    F: Any,  # pyspark.sql.functions, passed in by main()
    glue_run_id: str,
    started_at: str,
) -> dict[str, Any]:
    """Load one table's batch from the lake into BASE.<TABLE>; return the SUCCEEDED result."""
    spark = glue_context.spark_session
    upstream = read_upstream_result(s3, args)
    folders = [f for f in upstream["folders"] if f["rows"] > 0]
    lake_path = s3_uri(args.lake_bucket, lake_batch_prefix(args.pipeline, args.table, args.batch_id))
    common = dict(
        job=JOB_LAKE_TO_SNOWFLAKE,
        pipeline=args.pipeline,
        batch_id=args.batch_id,
        table=args.table,
        status="SUCCEEDED",
        lake_path=lake_path,
        glue_run_id=glue_run_id,
        started_at=started_at,
        target=base_table(args.table),
    )
    if not folders:
        LOG.info("cda_to_lake landed no rows for %s in %s; nothing to load", args.table, args.batch_id)
        return build_result(rows=0, extra={"upstreamRows": 0, "stageTable": ""}, **common)

    frames = []
    for f in folders:
        df = spark.read.parquet(f["target"])
        check_reserved_columns(df.columns)
        frames.append(df.withColumn(CDA_TIMESTAMP_COLUMN, F.lit(int(f["timestamp"])).cast("bigint")))
    data = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    data = data.withColumn(BATCH_ID_COLUMN, F.lit(args.batch_id))

    columns = [(field.name, field.dataType.simpleString()) for field in data.schema.fields]
    # The fence guard runs in the connector's session: before staging (fail early) and right before
    # the MERGE (a failover during the stage write still stops the MERGE).
    guard = fence_guard_sql(args.fence_region, args.fence_epoch)
    pre = [guard, *stage_statements(args.table, args.batch_id, columns)]
    post = [guard, *merge_statements(args.table, args.batch_id, columns)]  # also rejects case collisions
    data = data.toDF(*[snowflake_ident(name) for name, _ in columns]).persist()

    rows = data.count()
    if rows != upstream["rows"]:
        raise CdaError(
            f"the lake holds {rows} rows for {args.table} in {args.batch_id}, cda_to_lake reported "
            f"{upstream['rows']}; refusing to load a batch that changed"
        )

    stage = stage_table(args.table, args.batch_id)
    LOG.info("loading %d rows into %s.%s, then MERGE into %s", rows, SNOWFLAKE_SCHEMA, stage, base_table(args.table))
    try:
        glue_context.write_dynamic_frame.from_options(
            frame=DynamicFrame.fromDF(data, glue_context, "stage"),
            connection_type="snowflake",
            connection_options={
                "connectionName": args.snowflake_connection,
                "sfSchema": SNOWFLAKE_SCHEMA,
                "dbtable": stage,
                "preactions": ";".join(pre),
                "postactions": ";".join(post),
            },
        )
    except Exception as exc:
        stale = stale_fence_error(exc, args.fence_region, args.fence_epoch)
        if stale is not None:
            raise stale from exc
        raise
    data.unpersist()
    return build_result(rows=rows, extra={"upstreamRows": upstream["rows"], "stageTable": f"{SNOWFLAKE_SCHEMA}.{stage}"}, **common)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    import boto3
    from awsglue.context import GlueContext
    from awsglue.dynamicframe import DynamicFrame
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext
    from pyspark.sql import functions as F

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    resolved = getResolvedOptions(argv, ["JOB_NAME", *LAKE_TO_SNOWFLAKE_ARGS])
    args = validate_lake_to_snowflake_args(resolved)
    glue_run_id = optional_argv(argv, "JOB_RUN_ID")
    started_at = utc_now_iso()

    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(resolved["JOB_NAME"], resolved)
    s3 = boto3.client("s3")
    key = result_key(args.pipeline, args.batch_id, args.table, JOB_LAKE_TO_SNOWFLAKE)

    try:
        result = run(args, s3, glue_context, DynamicFrame, F, glue_run_id, started_at)
    except Exception as exc:
        failed = build_result(
            job=JOB_LAKE_TO_SNOWFLAKE,
            pipeline=args.pipeline,
            batch_id=args.batch_id,
            table=args.table,
            status="FAILED",
            rows=0,
            lake_path=s3_uri(args.lake_bucket, lake_batch_prefix(args.pipeline, args.table, args.batch_id)),
            glue_run_id=glue_run_id,
            started_at=started_at,
            target=base_table(args.table),
            error=f"{type(exc).__name__}: {exc}",
        )
        try:
            publish_result(s3, args.lake_bucket, key, failed)
        except Exception:
            LOG.exception("could not write the FAILED result object")
        raise

    publish_result(s3, args.lake_bucket, key, result)
    job.commit()


if __name__ == "__main__":
    main()
