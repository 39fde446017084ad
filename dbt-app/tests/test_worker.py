"""The dbt worker in-process over moto: it runs the fake dbt (tests/fake_dbt.py) as a real subprocess."""

from __future__ import annotations

import json
import logging
import os

import pytest
import settings
from registry import FAILED, INTERRUPTED, LOST, QUEUED, RUNNING, SUCCEEDED, iso
from support import BATCH, FENCE, REGION, SECRET, TABLE, RecordingSfn, body, clear_table, env_for, invocations, wait_for, write_fake_dbt
from tests_shared import AUTH
from web import Runtime, create_app
from worker import build_dbt_argv


@pytest.fixture
def app(aws, tmp_path, caplog):
    clear_table(aws)
    caplog.set_level(logging.INFO)  # the level gunicorn.conf.py configures (botocore DEBUG logs bodies)
    sfn = RecordingSfn()
    runtime = Runtime(settings.load(env_for(tmp_path, write_fake_dbt(tmp_path), SHUTDOWN_GRACE_SECONDS="1")), session=aws, sfn=sfn).start()
    client = create_app(runtime).test_client()
    env = type("App", (), {"session": aws, "sfn": sfn, "runtime": runtime, "client": client, "dir": tmp_path})
    yield env
    runtime.drain()


def start(app, **overrides):
    res = app.client.post("/api/v1/runs", json=body(**overrides), headers=AUTH)
    assert res.status_code == 202, res.get_json()
    return res.get_json()["runId"]


def status_of(app, run_id):
    return app.client.get(f"/api/v1/runs/{run_id}", headers=AUTH).get_json()


def ended(app, run_id, timeout=10):
    return wait_for(lambda: (r := status_of(app, run_id))["status"] not in (QUEUED, RUNNING) and r, timeout, what=f"{run_id} to end")


def sent(app, name, count=1):
    """The recorded callbacks of one kind, once `count` arrived (the record is written just before)."""
    return wait_for(lambda: len(app.sfn.named(name)) >= count and app.sfn.named(name), 5, what=name)


def test_a_run_succeeds_with_heartbeats_and_one_success_callback(app):
    run_id = start(app, taskToken="tok-1", vars={"fake_sleep": 0.8})
    run = ended(app, run_id)
    assert run["status"] == SUCCEEDED and run["startedAt"] and run["finishedAt"] and run["heartbeatAt"]
    assert "error" not in run
    assert len(invocations(app.dir)) == 1
    assert app.sfn.named("send_task_heartbeat"), "SendTaskHeartbeat while running"
    [success] = sent(app, "send_task_success")
    assert success["taskToken"] == "tok-1"
    output = json.loads(success["output"])
    assert output == {k: run[k] for k in ("runId", "batchId", "pipeline", "attempt", "status", "queuedAt", "startedAt", "finishedAt")}
    assert app.sfn.named("send_task_failure") == []


def test_fence_and_run_vars_reach_dbt_and_request_vars_cannot_override_them(app):
    run_id = start(app, vars={"batch_id": "evil", "fence_epoch": 99, "run_id": "x", "full_refresh_tables": ["a"]})
    ended(app, run_id)
    [call] = invocations(app.dir)
    argv = call["argv"]
    assert argv[1:10] == ["build", "--project-dir", str(app.dir), "--profiles-dir", app.runtime.settings.dbt_profiles_dir, "--target", "prod", "--select", "tag:semantic"]
    assert json.loads(argv[argv.index("--vars") + 1]) == {
        "batch_id": BATCH,
        "pipeline": "policycenter",
        "attempt": 1,
        "run_id": f"{BATCH}.1",
        "fence_region": FENCE["region"],
        "fence_epoch": FENCE["epoch"],
        "full_refresh_tables": ["a"],
    }


def test_credentials_reach_dbt_only_through_its_environment(app, caplog):
    run_id = start(app, taskToken="tok-secret-check")
    ended(app, run_id)
    [call] = invocations(app.dir)
    assert call["snowflake"] == {"SNOWFLAKE_" + k.upper(): v for k, v in SECRET.items()} | {"SNOWFLAKE_SCHEMA": "SEMANTIC"}
    assert "DBT_API_TOKEN" not in call["env_keys"] and "DBT_API_READ_TOKEN" not in call["env_keys"]
    logged = "\n".join(r.getMessage() for r in caplog.get_records("setup") + caplog.get_records("call"))
    assert "dbt worker" in logged and run_id in logged, "the logs were captured"
    for value in list(SECRET.values()) + ["tok-secret-check"]:
        assert value not in json.dumps(call["argv"])
        assert value not in logged
    assert not any(k.startswith("SNOWFLAKE_") for k in os.environ), "never in the app's own environment"


def test_a_failing_build_is_failed_with_the_output_tail(app):
    run_id = start(app, taskToken="tok-1", vars={"fake_exit": 1, "fake_output": "Database Error in model dim_policy"})
    run = ended(app, run_id)
    assert run["status"] == FAILED and "dbt exited 1" in run["error"] and "dim_policy" in run["error"]
    [failure] = sent(app, "send_task_failure")
    assert failure["error"] == "DbtRunFailed" and "dim_policy" in json.loads(failure["cause"])["error"]


def test_a_build_refused_by_the_warehouse_fence_is_dbtrunfenced(app):
    run_id = start(app, taskToken="tok-1", vars={"fake_exit": 1, "fake_output": "STALE_FENCE: epoch 3 < 4"})
    assert ended(app, run_id)["status"] == FAILED
    assert [f["error"] for f in sent(app, "send_task_failure")] == ["DbtRunFenced"]


def test_a_build_refused_as_already_built_is_succeeded_with_alreadybuilt_and_answered_with_success(app):
    """Soak seeds 1009/1016/1018: the warehouse refuses a second build of a built batch (ALREADY_BUILT);
    the run then says the batch is built, so the workflow records it built (no failure, no alert)."""
    run_id = start(app, taskToken="tok-1", vars={"fake_exit": 1, "fake_output": "ALREADY_BUILT: policycenter batch x was built by run y"})
    run = ended(app, run_id)
    assert run["status"] == SUCCEEDED and run["alreadyBuilt"] is True and "error" not in run
    [success] = sent(app, "send_task_success")
    assert json.loads(success["output"])["alreadyBuilt"] is True and json.loads(success["output"])["runId"] == run_id
    assert app.sfn.named("send_task_failure") == []


def test_an_ordinary_success_carries_no_alreadybuilt_flag(app):
    run = ended(app, start(app, taskToken="tok-1"))
    assert run["status"] == SUCCEEDED and "alreadyBuilt" not in run
    assert "alreadyBuilt" not in json.loads(sent(app, "send_task_success")[0]["output"])


def test_shutdown_interrupts_a_run_longer_than_the_grace(app):
    run_id = start(app, taskToken="tok-1", vars={"fake_sleep": 30})
    wait_for(lambda: status_of(app, run_id)["status"] == RUNNING, 5, what="RUNNING")
    app.runtime.drain()  # grace 1 s
    run = status_of(app, run_id)
    assert run["status"] == INTERRUPTED and "shutdown grace" in run["error"]
    assert [f["error"] for f in sent(app, "send_task_failure")] == ["DbtRunInterrupted"]
    assert app.client.get("/healthz").status_code == 503


def test_shutdown_lets_a_short_run_finish(app):
    run_id = start(app, vars={"fake_sleep": 0.5})
    wait_for(lambda: status_of(app, run_id)["status"] == RUNNING, 5, what="RUNNING")
    app.runtime.drain()
    assert status_of(app, run_id)["status"] == SUCCEEDED


def test_a_worker_that_lost_its_run_kills_dbt_and_keeps_lost(app):
    run_id = start(app, vars={"fake_sleep": 30})
    wait_for(lambda: invocations(app.dir), 5, what="dbt to start")
    table = app.session.resource("dynamodb", region_name=REGION).Table("etl-dbt-runs-us-east-1")
    [item] = table.scan()["Items"]
    item.update(status=LOST, error="marked LOST by another replica")
    table.put_item(Item=item)
    pid = invocations(app.dir)[0]["pid"]
    wait_for(lambda: not _alive(pid), 5, what="dbt to be killed")
    assert status_of(app, run_id)["status"] == LOST


def test_a_claimed_attempt_is_refused_while_another_attempt_runs(app):
    now = iso(app.runtime.store.clock())
    first = app.runtime.store.new_item(_request(1)) | {"status": RUNNING, "workerId": "elsewhere", "startedAt": now, "heartbeatAt": now}
    app.runtime.store.put_new(first)
    app.runtime.store.put_new(app.runtime.store.new_item(_request(2)))
    app.runtime.worker.nudge()
    run = ended(app, f"{BATCH}.2")
    assert run["status"] == FAILED and "attempt 1" in run["error"] and "RUNNING" in run["error"]
    assert invocations(app.dir) == []


def test_argv_without_select():
    run = {"command": "test", "select": None, "varsJson": "{}", "fence": FENCE, "batchId": BATCH, "pipeline": "policycenter", "attempt": 2, "runId": f"{BATCH}.2"}
    argv = build_dbt_argv(run, "dbt", "dev", "/p", "/q")
    assert "--select" not in argv and argv[:2] == ["dbt", "test"] and argv[argv.index("--target") + 1] == "dev"


def _request(attempt):
    return {"batchId": BATCH, "pipeline": "policycenter", "command": "build", "select": None, "vars": {}, "attempt": attempt, "fence": FENCE, "taskToken": None}


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_soak_q1_a_run_queued_behind_a_busy_worker_still_gets_task_heartbeats(app):
    """Soak seed 1 (issue J): with every worker building, a QUEUED run heard nothing (only idle workers
    beat queued runs), so its workflow timed out on heartbeats and ended DbtRunUnresponsive. The busy
    worker now beats the runs queued behind it, once per TASK_HEARTBEAT_SECONDS across replicas."""
    first = start(app, taskToken="tok-running", vars={"fake_sleep": 2.5})
    wait_for(lambda: status_of(app, first)["status"] == RUNNING, 5, what="the first run to start")
    queued = start(app, batchId="policycenter-20261128T020000Z", taskToken="tok-queued")
    wait_for(
        lambda: len([c for c in app.sfn.named("send_task_heartbeat") if c["taskToken"] == "tok-queued"]) >= 2,
        2,
        what="heartbeats of the queued run while the only worker builds",
    )
    assert status_of(app, queued)["status"] == QUEUED, "still queued: the heartbeats came from the busy worker"
    assert ended(app, first)["status"] == SUCCEEDED
    assert ended(app, queued)["status"] == SUCCEEDED


@pytest.fixture
def slow_renewing_app(aws, tmp_path):
    """One worker that renews its heartbeat rarely: a sweep can declare its run LOST while dbt still runs."""
    clear_table(aws)
    env = env_for(tmp_path, write_fake_dbt(tmp_path), RUN_HEARTBEAT_SECONDS="5", RUN_LOST_AFTER_SECONDS="11", SHUTDOWN_GRACE_SECONDS="1")
    runtime = Runtime(settings.load(env), session=aws, sfn=RecordingSfn()).start()
    env_ = type("App", (), {"session": aws, "runtime": runtime, "client": create_app(runtime).test_client(), "dir": tmp_path})
    yield env_
    runtime.drain()


def test_soak_l1_a_run_declared_lost_that_still_built_is_adopted_by_the_next_attempt(slow_renewing_app):
    """Soak seed 24 (issue J): a starved worker's run was declared LOST while its dbt finished the build;
    the workflow's next attempt built the batch a second time. Now the worker records the build
    (SUCCEEDED, builtAfterLost) and the next attempt adopts it instead of running dbt again."""
    app = slow_renewing_app
    first = start(app, taskToken="tok-1", vars={"fake_sleep": 1.0})
    wait_for(lambda: status_of(app, first)["status"] == RUNNING, 5, what="attempt 1 to run")
    # A sweep on another replica declares it LOST (what a stale heartbeat leads to), dbt still running.
    table = app.session.resource("dynamodb", region_name=REGION).Table(TABLE)
    item = app.runtime.store.get(BATCH, 1)
    assert app.runtime.store.mark_lost(item, "injected: stale heartbeat") is not None
    done = wait_for(lambda: (r := status_of(app, first))["status"] == SUCCEEDED and r, 10, what="attempt 1's build recorded")
    assert table.get_item(Key={"pk": item["pk"], "sk": item["sk"]})["Item"]["builtAfterLost"] is True
    second = start(app, attempt=2, taskToken="tok-2")
    assert ended(app, second)["status"] == SUCCEEDED
    assert len(invocations(app.dir)) == 1, "dbt ran once: attempt 2 adopted attempt 1's build"
    assert done["runId"] == first
