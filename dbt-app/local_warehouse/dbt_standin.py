#!/usr/bin/env python3
"""A fast stand-in for `dbt build` in the local twin and the exactly-once scenarios (NOT in the image).

It does dbt's part of the contract against the shared local warehouse and nothing else:
  1. the sink fence: CONTROL.FENCE must hold one row equal to the vars fence_region/fence_epoch,
     else it prints `STALE_FENCE: ...` (the marker the app maps to DbtRunFenced) and exits 1,
     writing nothing (as dbt_project/macros/fence.sql does);
  2. exactly once at the sink: when CONTROL.BUILDS already holds a SUCCEEDED build of this
     (pipeline, batch_id) it prints `ALREADY_BUILT: ...` and exits 1, writing nothing, unless the var
     rebuild is true (as dbt_project/macros/builds.sql check_not_built does);
  3. one CONTROL.BUILDS row (STATUS RUNNING, STARTED_AT) after the check passed;
  4. the build itself is a sleep of `standin_seconds` (var), or of the project dir's standin.json
     ({"seconds": s, "batches": {"<batch_id>": {"seconds": s, "fail": true}}});
  5. FINISHED_AT and STATUS (SUCCEEDED, or FAILED with exit 1 when told to fail).
Real dbt is covered by dbt-app/tests/test_app_real_dbt.py and dbt-app/local_warehouse/test_dbt_project.py.

Called by the app as: <this> build --project-dir D --profiles-dir P --target T [--select S] --vars JSON
with SNOWFLAKE_HOST/PORT/PROTOCOL/... in its environment (from the Snowflake secret).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path


def main(argv: list[str], alive: Callable[[], bool] = lambda: True) -> int:
    """Runs one build; `alive` (the fork server's view of its client) stops it early, unfinished."""
    parser = argparse.ArgumentParser(prog="dbt_standin")
    parser.add_argument("command")
    parser.add_argument("--project-dir", required=True)
    parser.add_argument("--profiles-dir")
    parser.add_argument("--target")
    parser.add_argument("--select")
    parser.add_argument("--vars", required=True)
    args = parser.parse_args(argv)
    v = json.loads(args.vars)
    missing = [k for k in ("batch_id", "pipeline", "attempt", "run_id", "fence_region", "fence_epoch") if k not in v]
    if missing:
        print(f"BUILD_VARS: missing {', '.join(missing)}", flush=True)
        return 2
    config_path = Path(args.project_dir) / "standin.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    per_batch = config.get("batches", {}).get(v["batch_id"], {})
    seconds = float(v.get("standin_seconds", per_batch.get("seconds", config.get("seconds", 0.5))))
    fail = bool(per_batch.get("fail", False))

    import snowflake.connector

    env = os.environ
    conn = snowflake.connector.connect(
        user=env["SNOWFLAKE_USER"],
        password=env["SNOWFLAKE_PASSWORD"],
        account=env["SNOWFLAKE_ACCOUNT"],
        host=env.get("SNOWFLAKE_HOST") or None,
        port=int(env.get("SNOWFLAKE_PORT") or 443),
        protocol=env.get("SNOWFLAKE_PROTOCOL") or "https",
        database=env["SNOWFLAKE_DATABASE"],
    )
    cur = conn.cursor()
    cur.execute(f"USE DATABASE {env['SNOWFLAKE_DATABASE']}")
    rows = cur.execute("SELECT REGION, EPOCH FROM CONTROL.FENCE").fetchall()
    if len(rows) != 1 or rows[0][0] != v["fence_region"] or int(rows[0][1]) != int(v["fence_epoch"]):
        print(
            f"STALE_FENCE: this build carries region={v['fence_region']} epoch={v['fence_epoch']}, the fence says "
            + (f"region={rows[0][0]} epoch={int(rows[0][1])}" if len(rows) == 1 else f"{len(rows)} rows"),
            flush=True,
        )
        return 1
    if not rebuild_requested(v):
        built = cur.execute(
            "SELECT RUN_ID, REGION, EPOCH FROM CONTROL.BUILDS WHERE PIPELINE = %s AND BATCH_ID = %s AND STATUS = 'SUCCEEDED' ORDER BY FINISHED_AT LIMIT 1",
            (v["pipeline"], v["batch_id"]),
        ).fetchall()
        if built:
            print(
                f"ALREADY_BUILT: {v['pipeline']} batch {v['batch_id']} was built by run {built[0][0]} "
                f"(region {built[0][1]}, epoch {int(built[0][2])}). This build must not write; pass the var rebuild: true to rebuild it.",
                flush=True,
            )
            return 1
    invocation = str(uuid.uuid4())
    cur.execute(
        "INSERT INTO CONTROL.BUILDS (INVOCATION_ID, COMMAND, PIPELINE, BATCH_ID, ATTEMPT, RUN_ID, REGION, EPOCH, STARTED_AT, STATUS) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP(), 'RUNNING')",
        (invocation, args.command, v["pipeline"], v["batch_id"], int(v["attempt"]), v["run_id"], v["fence_region"], int(v["fence_epoch"])),
    )
    print(f"fence ok: region={rows[0][0]} epoch={int(rows[0][1])}; building {v['batch_id']} for {seconds} s", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive():
            return 137  # killed mid-build: the row stays RUNNING, as a killed dbt leaves it
        time.sleep(min(0.05, max(end - time.monotonic(), 0)))
    cur.execute(
        "UPDATE CONTROL.BUILDS SET FINISHED_AT = CURRENT_TIMESTAMP(), STATUS = %s WHERE INVOCATION_ID = %s",
        ("FAILED" if fail else "SUCCEEDED", invocation),
    )
    conn.close()
    if fail:
        print("Completed with 1 error (stand-in told to fail this batch)", flush=True)
        return 1
    print("Completed successfully", flush=True)
    return 0


def rebuild_requested(variables: dict[str, object]) -> bool:
    """The var `rebuild` as dbt's check reads it: true, 1 or yes (any case) force a rebuild."""
    return str(variables.get("rebuild", False)).strip().lower() in ("true", "1", "yes")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
