"""The HTTP API over moto's DynamoDB (mock_aws): idempotency, conflicts, token replacement, LOST,
by-key reads, auth and every malformed request (4xx JSON, nothing written)."""

from __future__ import annotations

import json

import pytest
import settings
from registry import INTERRUPTED, LOST, RUNNING, SUCCEEDED, key, view
from support import API_TOKEN, APP_DIR, BATCH, FENCE, READ_TOKEN, REGION, Clock, RecordingSfn, body, clear_table, env_for, table_items
from web import Runtime, create_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
VIEW_KEYS = {"runId", "batchId", "pipeline", "command", "attempt", "status", "queuedAt", "startedAt", "finishedAt", "heartbeatAt", "fence"}


@pytest.fixture(scope="module")
def shared(aws, tmp_path_factory):
    """One runtime per module (building boto3 resources is the slow part); each test resets it."""
    clock, sfn = Clock(), RecordingSfn()
    runtime = Runtime(settings.load(env_for(tmp_path_factory.mktemp("api"), "/nonexistent/dbt")), session=aws, clock=clock, sfn=sfn)
    return runtime, create_app(runtime).test_client(), clock, sfn


@pytest.fixture
def env(aws, shared):
    clear_table(aws)
    runtime, client, clock, sfn = shared
    clock.now = Clock().now
    sfn.calls.clear()
    runtime.callbacks.sfn = sfn
    yield type("Env", (), {"session": aws, "clock": clock, "sfn": sfn, "runtime": runtime, "client": client})


def post(env, payload, headers=AUTH):
    res = env.client.post("/api/v1/runs", data=json.dumps(payload), headers={**headers, "Content-Type": "application/json"})
    return res.status_code, res.get_json()


def get(env, path, headers=AUTH):
    res = env.client.get(path, headers=headers)
    return res.status_code, res.get_json()


def force(env, attempt, **fields):
    """Moves a stored run on (as a worker would), bypassing the API."""
    table = env.session.resource("dynamodb", region_name=REGION).Table("etl-dbt-runs-us-east-1")
    item = table.get_item(Key=key(BATCH, attempt))["Item"]
    item.update(fields)
    table.put_item(Item=item)


def test_create_is_202_then_200_with_the_same_run_and_one_item(env):
    status, created = post(env, body(vars={"x": 1.5}))
    assert status == 202
    assert set(created) == VIEW_KEYS
    assert created["runId"] == f"{BATCH}.1" and created["status"] == "QUEUED" and created["fence"] == FENCE and created["attempt"] == 1
    assert post(env, body(vars={"x": 1.5})) == (200, created)
    assert get(env, f"/api/v1/runs/{BATCH}.1", READ) == (200, created)
    assert get(env, f"/api/v1/batches/{BATCH}/attempts/1") == (200, created)
    items = table_items(env.session)
    assert len(items) == 1
    assert items[0]["pk"] == f"RUN#{BATCH}" and items[0]["sk"] == "ATTEMPT#001"
    assert int(items[0]["expiresAt"]) == int(env.clock()) + 90 * 86400


def test_integral_numbers_written_with_a_fraction_are_integers(env):
    # JSON Schema's integer is any number with a zero fraction: 2.0 is the attempt 2 (found by schemathesis).
    status, created = post(env, body(attempt=2.0, fence={"region": "us-east-1", "epoch": 3.0}))
    assert status == 202
    assert created["runId"] == f"{BATCH}.2" and created["attempt"] == 2 and created["fence"] == {"region": "us-east-1", "epoch": 3}
    assert json.dumps(created["fence"]["epoch"]) == "3"
    assert post(env, body(attempt=2, fence={"region": "us-east-1", "epoch": 3}))[0] == 200
    for bad in (body(attempt=1.5), body(fence={"region": "us-east-1", "epoch": 2.5})):
        status, answer = post(env, bad)
        assert status == 422 and "must be an integer" in answer["message"], answer


@pytest.mark.parametrize(
    "change",
    [{"select": "tag:other"}, {"command": "run"}, {"vars": {"a": 1}}, {"fence": {"region": "us-west-1", "epoch": 3}}, {"fence": {"region": "us-east-1", "epoch": 4}}],
)
def test_same_key_different_parameters_is_409(env, change):
    post(env, body())
    status, payload = post(env, body(**change))
    assert status == 409 and payload["error"] == "Conflict" and payload["runId"] == f"{BATCH}.1"
    assert len(table_items(env.session)) == 1


def test_new_attempt_while_active_is_409_and_after_a_terminal_state_is_202(env):
    post(env, body())
    status, payload = post(env, body(attempt=2))
    assert status == 409 and "attempt 1 still QUEUED" in payload["message"]
    force(env, 1, status=RUNNING, heartbeatAt="2026-11-27T02:00:00.000Z", startedAt="2026-11-27T02:00:00.000Z")
    env.clock.now = 1795000000.0  # keep the heartbeat fresh relative to the clock below
    force(env, 1, heartbeatAt=_iso(env.clock()))
    assert post(env, body(attempt=2))[0] == 409
    force(env, 1, status="FAILED")
    status, payload = post(env, body(attempt=2))
    assert status == 202 and payload["runId"] == f"{BATCH}.2"


def _iso(epoch):
    from registry import iso

    return iso(epoch)


def test_a_new_task_token_replaces_the_stored_one(env):
    post(env, body(taskToken="token-1"))
    assert post(env, body(taskToken="token-2"))[0] == 200
    assert table_items(env.session)[0]["taskToken"] == "token-2"
    assert env.sfn.calls == [], "no callback while the run is not terminal"


def test_a_new_token_on_a_terminal_run_gets_its_callback_at_once(env):
    post(env, body(taskToken="token-1"))
    force(env, 1, status=SUCCEEDED, startedAt="2026-11-27T02:00:00.000Z", finishedAt="2026-11-27T02:05:00.000Z")
    status, payload = post(env, body(taskToken="token-2"))
    assert status == 200 and payload["status"] == SUCCEEDED
    [success] = env.sfn.named("send_task_success")
    assert success["taskToken"] == "token-2"
    assert json.loads(success["output"]) == {
        "runId": f"{BATCH}.1",
        "batchId": BATCH,
        "pipeline": "policycenter",
        "attempt": 1,
        "status": SUCCEEDED,
        "queuedAt": payload["queuedAt"],
        "startedAt": "2026-11-27T02:00:00.000Z",
        "finishedAt": "2026-11-27T02:05:00.000Z",
    }
    assert table_items(env.session)[0]["callbackError"] is None


def test_a_failing_callback_is_recorded_and_changes_nothing(env):
    from botocore.exceptions import ClientError

    env.runtime.callbacks.sfn = RecordingSfn(fail_with=ClientError({"Error": {"Code": "TaskTimedOut", "Message": "x"}}, "SendTaskFailure"))
    post(env, body(taskToken="token-1"))
    force(env, 1, status="FAILED", error="boom")
    assert post(env, body(taskToken="token-2"))[1]["status"] == "FAILED"
    item = table_items(env.session)[0]
    assert item["status"] == "FAILED" and "TaskTimedOut" in item["callbackError"] and item["callbackAt"]


def test_a_stale_running_run_is_reported_and_persisted_as_lost_once(env):
    post(env, body(taskToken="token-1"))
    started = _iso(env.clock())
    force(env, 1, status=RUNNING, workerId="pod-a-1", startedAt=started, heartbeatAt=started)
    env.clock.advance(1.9)
    assert get(env, f"/api/v1/runs/{BATCH}.1")[1]["status"] == RUNNING
    env.clock.advance(0.2)  # 2.1 s > RUN_LOST_AFTER_SECONDS = 2
    status, run = get(env, f"/api/v1/runs/{BATCH}.1")
    assert status == 200 and run["status"] == LOST and "pod-a-1 stopped heartbeating" in run["error"]
    assert table_items(env.session)[0]["status"] == LOST
    assert get(env, f"/api/v1/runs/{BATCH}.1")[1]["status"] == LOST
    [failure] = env.sfn.named("send_task_failure")
    assert failure["error"] == "DbtRunLost" and failure["taskToken"] == "token-1"
    assert json.loads(failure["cause"])["status"] == LOST
    assert post(env, body(attempt=2))[0] == 202, "a new attempt may run after LOST"


def test_the_idle_sweep_marks_stale_runs_lost_and_heartbeats_queued_runs(env):
    post(env, body(taskToken="token-1"))
    env.runtime.service.sweep()
    env.runtime.service.sweep()  # the second sweep within TASK_HEARTBEAT_SECONDS sends nothing
    assert [c["taskToken"] for c in env.sfn.named("send_task_heartbeat")] == ["token-1"]
    env.clock.advance(0.5)
    env.runtime.service.sweep()
    assert len(env.sfn.named("send_task_heartbeat")) == 2
    started = _iso(env.clock())
    force(env, 1, status=RUNNING, workerId="pod-b-1", startedAt=started, heartbeatAt=started)
    env.clock.advance(5)
    env.runtime.service.sweep()
    assert table_items(env.session)[0]["status"] == LOST
    assert [c["error"] for c in env.sfn.named("send_task_failure")] == ["DbtRunLost"]


def test_get_never_returns_the_task_token_or_worker(env):
    post(env, body(taskToken="secret-token-value"))
    for path in (f"/api/v1/runs/{BATCH}.1", f"/api/v1/batches/{BATCH}/attempts/1"):
        res = env.client.get(path, headers=AUTH)
        assert "secret-token-value" not in res.get_data(as_text=True)
        assert set(res.get_json()) == VIEW_KEYS


def test_view_has_error_only_when_set():
    run = {f: None for f in VIEW_KEYS} | {"status": INTERRUPTED, "error": "interrupted", "taskToken": "t"}
    assert view(run)["error"] == "interrupted" and "taskToken" not in view(run)
    assert "error" not in view(run | {"error": None})


def test_healthz_is_503_until_the_worker_runs(env):
    res = env.client.get("/healthz")
    assert res.status_code == 503 and res.get_json()["error"] == "Unavailable"


def test_healthz_is_200_with_the_worker_and_503_while_draining(aws, tmp_path):
    runtime = Runtime(settings.load(env_for(tmp_path, "/nonexistent/dbt")), session=aws, sfn=RecordingSfn())
    client = create_app(runtime).test_client()
    runtime.start()
    try:
        assert client.get("/healthz").get_json() == {"status": "ok"}
    finally:
        runtime.drain()
    res = client.get("/healthz")
    assert res.status_code == 503 and "draining" in res.get_json()["message"]


# --- bad input: every case is a 4xx JSON {error, message} and writes nothing -------------------

LONG = "x" * 70_000
BAD_REQUESTS = [
    # (name, method, path, headers, raw body, status, error)
    ("no Authorization header", "POST", "/api/v1/runs", {}, json.dumps(body()), 401, "Unauthorized"),
    ("Basic instead of Bearer", "POST", "/api/v1/runs", {"Authorization": f"Basic {API_TOKEN}"}, json.dumps(body()), 401, "Unauthorized"),
    ("empty bearer token", "POST", "/api/v1/runs", {"Authorization": "Bearer "}, json.dumps(body()), 401, "Unauthorized"),
    ("wrong token", "POST", "/api/v1/runs", {"Authorization": "Bearer nope"}, json.dumps(body()), 401, "Unauthorized"),
    ("read-only token on POST", "POST", "/api/v1/runs", READ, json.dumps(body()), 403, "Forbidden"),
    ("wrong token on GET", "GET", f"/api/v1/runs/{BATCH}.1", {"Authorization": "Bearer nope"}, None, 401, "Unauthorized"),
    ("Content-Type text/plain", "POST", "/api/v1/runs", {**AUTH, "Content-Type": "text/plain"}, json.dumps(body()), 415, "UnsupportedMediaType"),
    ("body not JSON", "POST", "/api/v1/runs", AUTH, "{batchId:", 400, "BadRequest"),
    ("empty body", "POST", "/api/v1/runs", AUTH, "", 400, "BadRequest"),
    ("NaN in the body", "POST", "/api/v1/runs", AUTH, '{"vars": {"x": NaN}}', 400, "BadRequest"),
    ("body a JSON array", "POST", "/api/v1/runs", AUTH, "[1, 2]", 400, "BadRequest"),
    ("body a JSON string", "POST", "/api/v1/runs", AUTH, '"run"', 400, "BadRequest"),
    ("body over 64 KiB", "POST", "/api/v1/runs", AUTH, json.dumps(body(vars={"x": LONG})), 413, "PayloadTooLarge"),
    ("missing fence", "POST", "/api/v1/runs", AUTH, json.dumps(body(fence=None)), 422, "ValidationError"),
    ("fence.epoch 0", "POST", "/api/v1/runs", AUTH, json.dumps(body(fence={"region": "us-east-1", "epoch": 0})), 422, "ValidationError"),
    ("fence.epoch a string", "POST", "/api/v1/runs", AUTH, json.dumps(body(fence={"region": "us-east-1", "epoch": "3"})), 422, "ValidationError"),
    ("fence.region not a region", "POST", "/api/v1/runs", AUTH, json.dumps(body(fence={"region": "east", "epoch": 3})), 422, "ValidationError"),
    ("fence with an unknown field", "POST", "/api/v1/runs", AUTH, json.dumps(body(fence={**FENCE, "by": "x"})), 422, "ValidationError"),
    ("malformed batchId", "POST", "/api/v1/runs", AUTH, json.dumps(body(batchId="policycenter-2026-11-27")), 422, "ValidationError"),
    ("batchId of an impossible time", "POST", "/api/v1/runs", AUTH, json.dumps(body(batchId="policycenter-20261331T020000Z")), 422, "ValidationError"),
    ("batchId of another pipeline", "POST", "/api/v1/runs", AUTH, json.dumps(body(pipeline="billingcenter")), 422, "ValidationError"),
    ("unknown command", "POST", "/api/v1/runs", AUTH, json.dumps(body(command="run-operation")), 422, "ValidationError"),
    ("select with a shell metacharacter", "POST", "/api/v1/runs", AUTH, json.dumps(body(select="a; rm -rf /")), 422, "ValidationError"),
    ("vars not an object", "POST", "/api/v1/runs", AUTH, json.dumps(body(vars=[1])), 422, "ValidationError"),
    ("attempt 0", "POST", "/api/v1/runs", AUTH, json.dumps(body(attempt=0)), 422, "ValidationError"),
    ("attempt 1000", "POST", "/api/v1/runs", AUTH, json.dumps(body(attempt=1000)), 422, "ValidationError"),
    ("attempt true", "POST", "/api/v1/runs", AUTH, json.dumps(body(attempt=True)), 422, "ValidationError"),
    ("taskToken empty", "POST", "/api/v1/runs", AUTH, json.dumps(body(taskToken="")), 422, "ValidationError"),
    ("taskToken over 1024 characters", "POST", "/api/v1/runs", AUTH, json.dumps(body(taskToken="t" * 1025)), 422, "ValidationError"),
    ("unknown field", "POST", "/api/v1/runs", AUTH, json.dumps(body(extra=1)), 422, "ValidationError"),
    ("runId without attempt", "GET", f"/api/v1/runs/{BATCH}", AUTH, None, 404, "NotFound"),
    ("runId path traversal", "GET", "/api/v1/runs/../etc/passwd", AUTH, None, 404, "NotFound"),
    ("unknown runId", "GET", f"/api/v1/runs/{BATCH}.7", AUTH, None, 404, "NotFound"),
    ("attempt not a number", "GET", f"/api/v1/batches/{BATCH}/attempts/one", AUTH, None, 404, "NotFound"),
    ("attempt 0 by key", "GET", f"/api/v1/batches/{BATCH}/attempts/0", AUTH, None, 404, "NotFound"),
    ("malformed batchId by key", "GET", "/api/v1/batches/nope/attempts/1", AUTH, None, 404, "NotFound"),
    ("unknown route", "GET", "/api/v2/runs", AUTH, None, 404, "NotFound"),
    ("DELETE a run", "DELETE", f"/api/v1/runs/{BATCH}.1", AUTH, None, 405, "MethodNotAllowed"),
    ("PUT runs", "PUT", "/api/v1/runs", AUTH, json.dumps(body()), 405, "MethodNotAllowed"),
    ("OPTIONS runs", "OPTIONS", "/api/v1/runs", AUTH, None, 405, "MethodNotAllowed"),
    ("GET runs (list)", "GET", "/api/v1/runs", AUTH, None, 405, "MethodNotAllowed"),
]


@pytest.mark.parametrize("name,method,path,headers,raw,status,error", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_is_a_4xx_json_error_and_writes_nothing(env, name, method, path, headers, raw, status, error):
    hdrs = dict(headers)
    if raw is not None:
        hdrs.setdefault("Content-Type", "application/json")
    res = env.client.open(path, method=method, headers=hdrs, data=raw)
    payload = res.get_json()
    assert res.status_code == status, payload
    assert payload["error"] == error and isinstance(payload["message"], str) and payload["message"]
    assert res.headers["Content-Type"] == "application/json"
    assert table_items(env.session) == []
    assert env.sfn.calls == []


def test_validation_lists_every_problem(env):
    status, payload = post(env, {"batchId": "x", "pipeline": 1, "attempt": -1, "fence": {}, "extra": 1})
    assert status == 422
    for fragment in ("unknown fields: extra", "batchId:", "pipeline:", "attempt:", "fence.region", "fence.epoch"):
        assert fragment in payload["message"]


def test_401_carries_www_authenticate(env):
    assert env.client.get(f"/api/v1/runs/{BATCH}.1").headers["WWW-Authenticate"].startswith("Bearer")


# --- the OpenAPI document matches what the app answers -------------------------------------------


def _spec():
    import yaml

    return yaml.safe_load((APP_DIR.parent / "docs" / "dbt-api.openapi.yaml").read_text(encoding="utf-8"))


def _check(spec, path, method, res):
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    responses = spec["paths"][path][method]["responses"]
    code = str(res.status_code)
    assert code in responses or (res.status_code >= 500 and "5XX" in responses), f"{method} {path} {code} is not declared"
    declared = responses.get(code) or responses["5XX"]
    if "$ref" in declared:
        declared = spec["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    schema = declared["content"]["application/json"]["schema"]
    registry_ = Registry().with_resource("urn:spec", DRAFT202012.create_resource(spec))
    resolved = {"$ref": "urn:spec#/components/schemas/" + schema["$ref"].rsplit("/", 1)[1]} if "$ref" in schema else schema
    Draft202012Validator(resolved, registry=registry_).validate(res.get_json())


def test_every_answer_is_declared_in_the_openapi_document_with_its_schema(env):
    spec = _spec()
    c, auth = env.client, {**AUTH, "Content-Type": "application/json"}
    _check(spec, "/api/v1/runs", "post", c.post("/api/v1/runs", data=json.dumps(body(taskToken="t")), headers=auth))
    _check(spec, "/api/v1/runs", "post", c.post("/api/v1/runs", data=json.dumps(body(taskToken="t")), headers=auth))
    _check(spec, "/api/v1/runs", "post", c.post("/api/v1/runs", data=json.dumps(body(select="x")), headers=auth))
    _check(spec, "/api/v1/runs/{runId}", "get", c.get(f"/api/v1/runs/{BATCH}.1", headers=AUTH))
    _check(spec, "/api/v1/batches/{batchId}/attempts/{attempt}", "get", c.get(f"/api/v1/batches/{BATCH}/attempts/1", headers=AUTH))
    _check(spec, "/healthz", "get", c.get("/healthz"))
    templates = {"/api/v1/runs": "/api/v1/runs", f"/api/v1/runs/{BATCH}": "/api/v1/runs/{runId}"}
    for _name, method, path, headers, raw, _status, _error in BAD_REQUESTS:
        template = templates.get(path) or ("/api/v1/runs/{runId}" if path.startswith("/api/v1/runs/") else None)
        template = template or ("/api/v1/batches/{batchId}/attempts/{attempt}" if path.startswith("/api/v1/batches/") else None)
        if template is None or method.lower() not in spec["paths"][template]:
            continue  # unknown routes and undeclared methods: checked above as 404/405 JSON errors
        hdrs = dict(headers)
        if raw is not None:
            hdrs.setdefault("Content-Type", "application/json")
        _check(spec, template, method.lower(), c.open(path, method=method, headers=hdrs, data=raw))


def test_bad_input_doc_lists_every_case():
    for doc in ("docs/bad-input.md", "scripts/bad-input-doc.template.md"):
        text = (APP_DIR.parent / doc).read_text(encoding="utf-8")
        section = text[text.index("## (d) dbt app HTTP API") :]
        rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| case") and not line.startswith("|---")]
        assert len(rows) == len(BAD_REQUESTS), doc
        for row, (name, _m, _p, _h, _r, status, error) in zip(rows, BAD_REQUESTS, strict=True):
            assert row.startswith(f"| {name} |") and row.endswith(f"| {status} `{error}` |"), (doc, row)
