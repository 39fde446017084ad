"""A run keeps its workflow's pipeline lock alive, and its own deadlines end it: over moto, with the fake dbt."""

from __future__ import annotations

import json

import boto3
import pytest
import settings
from moto import mock_aws
from registry import FAILED, QUEUED, SUCCEEDED
from support import BATCH, REGION, Clock, RecordingSfn, body, clear_table, create_aws, env_for, table_items, wait_for, write_fake_dbt
from tests_shared import AUTH
from web import Runtime, create_app

CONTROL = "etl-platform-control"
HOLDER = "arn:aws:states:us-east-1:123456789012:execution:etl-policycenter-downstream:policycenter-20261127T020000Z"
LOCK_KEY = {"pk": "PIPELINE#policycenter", "sk": "LOCK#DOWNSTREAM"}
LEASE = {**LOCK_KEY, "holder": HOLDER, "seconds": 900}


@pytest.fixture(scope="module")
def aws():
    with mock_aws():
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        create_aws(session)
        session.client("dynamodb", region_name=REGION).create_table(
            TableName=CONTROL,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield session


def lock(session):
    return session.resource("dynamodb", region_name=REGION).Table(CONTROL)


def put_lock(session, holder=HOLDER, expires=1):
    lock(session).put_item(Item={**LOCK_KEY, "executionArn": holder, "batchId": BATCH, "leaseExpiresAt": expires})


def lease_of(session):
    return int(lock(session).get_item(Key=LOCK_KEY)["Item"]["leaseExpiresAt"])


def runtime_for(aws, tmp_path, clock=None, **env):
    clear_table(aws)
    sfn = RecordingSfn()
    s = settings.load(env_for(tmp_path, write_fake_dbt(tmp_path), CONTROL_TABLE=CONTROL, **env))
    runtime = Runtime(s, session=aws, sfn=sfn, **({"clock": clock} if clock else {}))
    return runtime, sfn, create_app(runtime).test_client()


def test_a_running_run_pushes_its_locks_lease_forward_on_every_heartbeat(aws, tmp_path):
    put_lock(aws, expires=1)
    runtime, sfn, client = runtime_for(aws, tmp_path)
    runtime.start()
    try:
        res = client.post("/api/v1/runs", json=body(taskToken="tok-1", lease=LEASE, vars={"fake_sleep": 1.0}), headers=AUTH)
        assert res.status_code == 202, res.get_json()
        first = wait_for(lambda: lease_of(aws) > 1 and lease_of(aws), 5, what="a first renewal")
        run = wait_for(lambda: (r := client.get(f"/api/v1/runs/{BATCH}.1", headers=AUTH).get_json())["status"] == SUCCEEDED and r, 10, what="success")
        assert run["status"] == SUCCEEDED
        # Renewed to now + seconds, and more than once while the run lived (TASK_HEARTBEAT_SECONDS is 0.3 s).
        assert first >= int(runtime.store.clock()) + 900 - 5
        renewed_at = lock(aws).get_item(Key=LOCK_KEY)["Item"]["leaseRenewedAt"]
        assert int(renewed_at) >= first - 900
        assert len(sfn.named("send_task_heartbeat")) >= 2
    finally:
        runtime.drain()


def test_a_lock_taken_over_by_another_execution_is_not_renewed(aws, tmp_path):
    other = HOLDER.replace("policycenter-20261127T020000Z", "policycenter-20261128T020000Z")
    put_lock(aws, holder=other, expires=7)
    runtime, _, client = runtime_for(aws, tmp_path)
    runtime.start()
    try:
        assert client.post("/api/v1/runs", json=body(lease=LEASE, vars={"fake_sleep": 0.8}), headers=AUTH).status_code == 202
        wait_for(lambda: client.get(f"/api/v1/runs/{BATCH}.1", headers=AUTH).get_json()["status"] == SUCCEEDED, 10, what="success")
        item = lock(aws).get_item(Key=LOCK_KEY)["Item"]
        assert (item["executionArn"], int(item["leaseExpiresAt"])) == (other, 7), "the other execution's lock is untouched"
    finally:
        runtime.drain()


def test_a_queued_run_past_its_queue_deadline_fails_with_its_own_error(aws, tmp_path):
    clock = Clock()
    put_lock(aws, expires=1)
    runtime, sfn, client = runtime_for(aws, tmp_path, clock=clock)  # no worker started: the run stays QUEUED
    res = client.post("/api/v1/runs", json=body(taskToken="tok-q", lease=LEASE, deadlines={"maxQueueMinutes": 1, "maxRunMinutes": 30}), headers=AUTH)
    assert res.status_code == 202
    clock.advance(30)
    runtime.service.sweep()
    assert client.get(f"/api/v1/runs/{BATCH}.1", headers=AUTH).get_json()["status"] == QUEUED
    assert sfn.named("send_task_heartbeat") and lease_of(aws) == int(clock()) + 900, "a queued run is kept alive too"
    clock.advance(31)
    runtime.service.sweep()
    run = client.get(f"/api/v1/runs/{BATCH}.1", headers=AUTH).get_json()
    assert run["status"] == FAILED and run["error"].startswith("QUEUE_TIMEOUT")
    [failure] = sfn.named("send_task_failure")
    assert failure["error"] == "DbtRunQueueTimeout" and json.loads(failure["cause"])["runId"] == f"{BATCH}.1"


def test_a_run_past_its_run_deadline_is_killed_and_reported_as_dbtruntimeout(aws, tmp_path):
    runtime, sfn, client = runtime_for(aws, tmp_path, DBT_RUN_TIMEOUT_SECONDS="1")
    runtime.start()
    try:
        assert client.post("/api/v1/runs", json=body(taskToken="tok-t", vars={"fake_sleep": 5}), headers=AUTH).status_code == 202
        run = wait_for(lambda: (r := client.get(f"/api/v1/runs/{BATCH}.1", headers=AUTH).get_json())["status"] == FAILED and r, 10, what="timeout")
        assert run["error"].startswith("RUN_TIMEOUT")
        assert [f["error"] for f in wait_for(lambda: sfn.named("send_task_failure"), 5)] == ["DbtRunTimeout"]
    finally:
        runtime.drain()


def test_the_run_deadline_is_the_shorter_of_the_pod_limit_and_the_request(aws, tmp_path):
    runtime, _, _ = runtime_for(aws, tmp_path, DBT_RUN_TIMEOUT_SECONDS="14400")
    worker_timeout = runtime.settings.dbt_run_timeout_seconds
    from worker import Worker

    w = Worker.__new__(Worker)
    w.run_timeout = worker_timeout
    assert w.run_timeout_of({"deadlines": {"maxQueueMinutes": 5, "maxRunMinutes": 30}}) == 1800
    assert w.run_timeout_of({"deadlines": {"maxQueueMinutes": 5, "maxRunMinutes": 600}}) == 14400
    assert w.run_timeout_of({}) == 14400


@pytest.mark.parametrize(
    "lease,deadlines,fragment",
    [
        ({**LEASE, "pk": "PIPELINE#claimcenter"}, None, "lease.pk: names another pipeline's lock"),
        ({**LEASE, "sk": "FENCE"}, None, "lease.sk: must be LOCK#DOWNSTREAM"),
        ({**LEASE, "holder": "me"}, None, "lease.holder: must be a Step Functions execution ARN"),
        ({**LEASE, "seconds": 10}, None, "lease.seconds: must be an integer 60..86400"),
        ({**LEASE, "extra": 1}, None, "lease: unknown fields extra"),
        ("lock", None, "lease: must be an object"),
        (None, {"maxQueueMinutes": 0, "maxRunMinutes": 30}, "deadlines.maxQueueMinutes: must be an integer 1..1440"),
        (None, {"maxRunMinutes": 30}, "deadlines.maxQueueMinutes"),
        (None, [1], "deadlines: must be an object"),
    ],
)
def test_a_malformed_lease_or_deadline_is_422_and_writes_nothing(aws, tmp_path, lease, deadlines, fragment):
    runtime, _, client = runtime_for(aws, tmp_path)
    res = client.post("/api/v1/runs", json=body(lease=lease, deadlines=deadlines) | ({"lease": lease} if lease == "lock" else {}), headers=AUTH)
    assert res.status_code == 422 and fragment in res.get_json()["message"], res.get_json()
    assert table_items(aws) == []
