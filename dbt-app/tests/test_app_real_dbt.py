"""The app as deployed, end to end, with no stand-in for dbt: the worker runs the real dbt CLI on the
real project with the PRODUCTION profiles.yml (target prod), fed only by the Snowflake secret, whose
host/port/protocol point at the local warehouse (a fakesnow server: the stand-in for the one
Snowflake account both regions share). AWS is moto, in-process.

What it shows: the secret → credentials.py → dbt's env → profiles.yml → dbt-snowflake chain works;
the fence vars the app passes are the ones the project's on-run-start checks; the build is recorded
in the warehouse under the app's run id; a stale epoch is refused at the sink and reported as
DbtRunFenced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
import settings
from local_warehouse import Warehouse, serve
from moto import mock_aws
from registry import FAILED, SUCCEEDED
from support import APP_DIR, REGION, SECRET, RecordingSfn, create_aws, env_for, wait_for
from tests_shared import AUTH
from web import Runtime, create_app

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

BATCH = "policycenter-20261127T080000Z"


@pytest.fixture(scope="module")
def warehouse():
    """The fence moves to us-east-1 at the next epoch (fakesnow keeps its in-memory database for the
    whole process, so another module may have used this warehouse before)."""
    with serve() as port:
        w = Warehouse(port)
        w.seed(pipelines=["policycenter"])  # the only pipeline these builds select (tag:policycenter)
        current = w.fence()
        w.set_fence("us-east-1", (current[1] if current else 1) + 1)  # >= 2, so epoch - 1 is a valid, stale epoch
        yield w
        w.close()


@pytest.fixture(scope="module")
def epoch(warehouse):
    return warehouse.fence()[1]


@pytest.fixture(scope="module")
def app(warehouse, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real-dbt")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        secret = {**SECRET, "host": "127.0.0.1", "port": warehouse.port, "protocol": "http", "database": "ETL", "schema": "SEMANTIC"}
        create_aws(session, secret)
        env = env_for(
            tmp,
            Path(sys.executable).with_name("dbt"),
            DBT_PROJECT_DIR=str(APP_DIR / "dbt_project"),
            DBT_PROFILES_DIR=str(APP_DIR / "profiles"),
            DBT_TARGET="prod",
            DBT_LOG_PATH=str(tmp / "logs"),
            DBT_TARGET_PATH=str(tmp / "target"),
            RUN_LOST_AFTER_SECONDS="30",
            DBT_RUN_TIMEOUT_SECONDS="240",
        )
        sfn = RecordingSfn()
        runtime = Runtime(settings.load(env), session=session, sfn=sfn).start()
        client = create_app(runtime).test_client()
        yield type("App", (), {"client": client, "sfn": sfn, "runtime": runtime})
        runtime.drain()


def post(app, batch_id, epoch, token):
    body = {
        "batchId": batch_id,
        "pipeline": "policycenter",
        "command": "build",
        "select": "tag:policycenter",
        "fence": {"region": "us-east-1", "epoch": epoch},
        "taskToken": token,
    }
    res = app.client.post("/api/v1/runs", json=body, headers=AUTH)
    assert res.status_code == 202, res.get_json()
    return res.get_json()["runId"]


def ended(app, run_id):
    return wait_for(
        lambda: (r := app.client.get(f"/api/v1/runs/{run_id}", headers=AUTH).get_json())["status"] not in ("QUEUED", "RUNNING") and r, 240, 0.25, f"{run_id} to end"
    )


def test_a_build_through_the_app_runs_real_dbt_with_the_production_profile_and_is_recorded_once(app, warehouse, epoch):
    run_id = post(app, BATCH, epoch, "tok-ok")
    run = ended(app, run_id)
    assert run["status"] == SUCCEEDED, run.get("error")
    [build] = [b for b in warehouse.builds(batch_id=BATCH) if b["command"] == "build"]
    assert (build["run_id"], build["status"], build["region"], int(build["epoch"])) == (run_id, "SUCCEEDED", "us-east-1", epoch)
    assert warehouse.count("SEMANTIC.fct_policy_period") > 0, "the mart was built from the seeded base layer"
    [success] = app.sfn.named("send_task_success")
    assert json.loads(success["output"])["runId"] == run_id


def test_a_stale_epoch_is_refused_by_the_warehouse_and_reported_as_dbtrunfenced(app, warehouse, epoch):
    batch = "policycenter-20261128T080000Z"
    builds_before = len(warehouse.builds())
    run_id = post(app, batch, epoch - 1, "tok-stale")
    run = ended(app, run_id)
    assert run["status"] == FAILED and "STALE_FENCE" in run["error"]
    assert len(warehouse.builds()) == builds_before, "a refused build writes nothing, not even its build row"
    failures = [f for f in app.sfn.named("send_task_failure") if f["taskToken"] == "tok-stale"]
    assert [f["error"] for f in failures] == ["DbtRunFenced"]


def test_a_second_attempt_of_a_built_batch_is_refused_by_the_warehouse_and_recorded_succeeded_already_built(app, warehouse, epoch):
    """Soak seeds 1009/1016/1018: the batch's records said it was not built (a stale FAILED record won
    at a heal, or the build's run was recorded LOST); the warehouse knows better."""
    builds = [b for b in warehouse.builds(batch_id=BATCH) if b["status"] == "SUCCEEDED"]
    if not builds:  # run alone: build it first
        assert ended(app, post(app, BATCH, epoch, "tok-first"))["status"] == SUCCEEDED
    builds_before = warehouse.builds(batch_id=BATCH)
    body = {
        "batchId": BATCH,
        "pipeline": "policycenter",
        "command": "build",
        "select": "tag:policycenter",
        "attempt": 2,
        "fence": {"region": "us-east-1", "epoch": epoch},
        "taskToken": "tok-again",
    }
    res = app.client.post("/api/v1/runs", json=body, headers=AUTH)
    assert res.status_code == 202, res.get_json()
    run = ended(app, res.get_json()["runId"])
    assert run["status"] == SUCCEEDED and run["alreadyBuilt"] is True, run
    assert warehouse.builds(batch_id=BATCH) == builds_before, "the refused build wrote no build row"
    [success] = [s for s in app.sfn.named("send_task_success") if s["taskToken"] == "tok-again"]
    assert json.loads(success["output"])["alreadyBuilt"] is True
