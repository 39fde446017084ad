"""Real replicas: two (or more) `gunicorn -c gunicorn.conf.py app:app` processes behind a round-robin
loopback proxy, sharing moto's DynamoDB and Secrets Manager (ThreadedMotoServer) and sending task-token
callbacks to a recording HTTP server. dbt is the fake (tests/fake_dbt.py) as a real subprocess.

The only test-only variables are boto3's AWS_ENDPOINT_URL_* (plus dummy AWS keys for signing).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import registry
from moto.server import ThreadedMotoServer
from support import API_TOKEN, APP_DIR, REGION, TABLE, RoundRobinProxy, body, create_aws, env_for, free_port, invocations, wait_for, write_fake_dbt

GUNICORN = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gunicorn")
LOST_AFTER = 2.0
POLL = 0.3
GRACE = 3.0


class SfnRecorder(BaseHTTPRequestHandler):
    """Answers Step Functions' JSON protocol with {} and records (operation, body)."""

    calls: list[tuple[str, dict]] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            SfnRecorder.calls.append((self.headers.get("X-Amz-Target", "").split(".")[-1], json.loads(raw or b"{}")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def sfn_calls(operation, token=None):
    with SfnRecorder.lock:
        return [b for op, b in SfnRecorder.calls if op == operation and (token is None or b.get("taskToken") == token)]


class Replica:
    def __init__(self, env, log_path):
        self.port = int(env["PORT"])
        self.log = open(log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([GUNICORN, "-c", "gunicorn.conf.py", "app:app"], cwd=APP_DIR, env=env, stdout=self.log, stderr=self.log, start_new_session=True)

    def health(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as res:
                return res.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("replicas")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_url = "http://%s:%d" % moto.get_host_and_port()
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), SfnRecorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")

    class Patched:
        def client(self, name, **kw):
            return session.client(name, endpoint_url=moto_url, **kw)

        def resource(self, name, **kw):
            return session.resource(name, endpoint_url=moto_url, **kw)

    aws = Patched()
    create_aws(aws)
    project = work / "project"
    project.mkdir()
    dbt = write_fake_dbt(work)
    replicas: list[Replica] = []

    def start_replica():
        env = env_for(
            project,
            dbt,
            PORT=str(free_port()),
            RUN_HEARTBEAT_SECONDS="0.3",
            RUN_LOST_AFTER_SECONDS=str(LOST_AFTER),
            QUEUE_POLL_SECONDS=str(POLL),
            TASK_HEARTBEAT_SECONDS="0.5",
            SHUTDOWN_GRACE_SECONDS=str(GRACE),
        )
        env |= {
            "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url,
            "AWS_ENDPOINT_URL_SFN": "http://127.0.0.1:%d" % recorder.server_address[1],
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "PATH": os.environ.get("PATH", os.defpath),
        }
        replica = Replica(env, work / f"replica-{len(replicas)}.log")
        replicas.append(replica)
        wait_for(lambda: replica.health() == 200 or not replica.alive(), 30, 0.1, "a replica to be healthy")
        assert replica.alive(), (work / f"replica-{len(replicas) - 1}.log").read_text()
        proxy.backends.append(replica.port)
        return replica

    proxy = RoundRobinProxy([])
    for _ in range(2):
        start_replica()
    table = aws.resource("dynamodb", region_name=REGION).Table(TABLE)
    yield type("Cluster", (), {"start_replica": staticmethod(start_replica), "replicas": replicas, "proxy": proxy, "table": table, "project": project, "work": work})
    for r in replicas:
        r.kill(signal.SIGKILL)
        r.proc.wait(timeout=10)
        r.log.close()
    proxy.close()
    recorder.shutdown()
    moto.stop()


def call(cluster, method, path, payload=None, port=None):
    url = f"http://127.0.0.1:{port or cluster.proxy.port}{path}"
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def record(cluster, batch_id, attempt=1):
    return cluster.table.get_item(Key=registry.key(batch_id, attempt), ConsistentRead=True).get("Item")


def replica_running(cluster, batch_id, attempt=1):
    """The replica whose worker process claimed the run (workerId = <host>-<pid>-<suffix>)."""
    item = wait_for(lambda: (i := record(cluster, batch_id, attempt)) and i["status"] == "RUNNING" and i, 10, what="RUNNING")
    pid = int(item["workerId"].rsplit("-", 2)[1])
    with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    [replica] = [r for r in cluster.replicas if r.proc.pid == ppid]
    return replica


def runs_of(cluster, run_id):
    return [c for c in invocations(cluster.project) if json.loads(c["argv"][c["argv"].index("--vars") + 1])["run_id"] == run_id]


def test_any_replica_answers_and_a_retried_post_starts_dbt_once(cluster):
    request = body(taskToken="tok-a", vars={"fake_sleep": 1.5})
    status, created = call(cluster, "POST", "/api/v1/runs", request)
    assert status == 202
    status, again = call(cluster, "POST", "/api/v1/runs", request)
    assert cluster.proxy.routed[-1] != cluster.proxy.routed[-2], "the retry landed on the other replica"
    assert status == 200 and again["runId"] == created["runId"]
    seen = set()
    for _ in range(50):
        status, run = call(cluster, "GET", f"/api/v1/runs/{created['runId']}")
        assert status == 200 and run["runId"] == created["runId"] and run["queuedAt"] == created["queuedAt"]
        seen.add(cluster.proxy.routed[-1])
    assert seen == {r.port for r in cluster.replicas}, "the GETs reached both replicas"
    done = wait_for(lambda: (r := call(cluster, "GET", f"/api/v1/runs/{created['runId']}")[1])["status"] == "SUCCEEDED" and r, 15, 0.1, "SUCCEEDED")
    assert len(runs_of(cluster, created["runId"])) == 1, "dbt was invoked exactly once"
    assert sfn_calls("SendTaskHeartbeat", "tok-a"), "heartbeats while running"
    [success] = wait_for(lambda: sfn_calls("SendTaskSuccess", "tok-a"), 5, what="SendTaskSuccess")
    assert json.loads(success["output"]) == {k: done[k] for k in ("runId", "batchId", "pipeline", "attempt", "status", "queuedAt", "startedAt", "finishedAt")}


def test_a_replica_killed_mid_run_leaves_a_lost_run_and_attempt_2_succeeds(cluster):
    batch = "policycenter-20261128T020000Z"
    assert call(cluster, "POST", "/api/v1/runs", body(batchId=batch, taskToken="tok-b", vars={"fake_sleep": 60}))[0] == 202
    victim = replica_running(cluster, batch)
    killed_at = time.monotonic()
    victim.kill(signal.SIGKILL)
    # Read the table directly (a GET would mark it LOST itself): the survivor's idle sweep must do it.
    wait_for(lambda: record(cluster, batch)["status"] == "LOST", LOST_AFTER + 4 * POLL + 1, 0.05, "LOST")
    assert time.monotonic() - killed_at <= LOST_AFTER + 4 * POLL + 1
    [failure] = wait_for(lambda: sfn_calls("SendTaskFailure", "tok-b"), 5, what="SendTaskFailure")
    assert failure["error"] == "DbtRunLost"
    status, second = call(cluster, "POST", "/api/v1/runs", body(batchId=batch, attempt=2, vars={"fake_sleep": 0.2}))
    assert status == 202 and second["runId"] == f"{batch}.2"
    wait_for(lambda: call(cluster, "GET", f"/api/v1/runs/{batch}.2")[1]["status"] == "SUCCEEDED", 10, 0.1, "attempt 2 SUCCEEDED")
    assert call(cluster, "GET", f"/api/v1/batches/{batch}/attempts/1")[1]["status"] == "LOST"


def _ensure_two(cluster):
    while sum(r.alive() for r in cluster.replicas) < 2:
        cluster.start_replica()


def test_sigterm_interrupts_a_run_longer_than_the_grace(cluster):
    _ensure_two(cluster)
    batch = "policycenter-20261129T020000Z"
    assert call(cluster, "POST", "/api/v1/runs", body(batchId=batch, taskToken="tok-c", vars={"fake_sleep": 60}))[0] == 202
    target = replica_running(cluster, batch)
    target.proc.send_signal(signal.SIGTERM)  # the kubelet signals PID 1, the gunicorn arbiter
    wait_for(lambda: target.health() == 503, 3, 0.05, "healthz 503 while draining")
    assert call(cluster, "GET", f"/api/v1/runs/{batch}.1", port=target.port)[1]["status"] == "RUNNING", "still serving while draining"
    wait_for(lambda: record(cluster, batch)["status"] == "INTERRUPTED", GRACE + 5, 0.1, "INTERRUPTED")
    assert "shutdown grace" in record(cluster, batch)["error"]
    [failure] = wait_for(lambda: sfn_calls("SendTaskFailure", "tok-c"), 5, what="SendTaskFailure")
    assert failure["error"] == "DbtRunInterrupted"
    assert target.proc.wait(timeout=10) == 0


def test_sigterm_lets_a_short_run_succeed(cluster):
    _ensure_two(cluster)
    batch = "policycenter-20261130T020000Z"
    assert call(cluster, "POST", "/api/v1/runs", body(batchId=batch, vars={"fake_sleep": 1.5}))[0] == 202
    target = replica_running(cluster, batch)
    target.proc.send_signal(signal.SIGTERM)
    assert target.proc.wait(timeout=GRACE + 5) == 0
    assert record(cluster, batch)["status"] == "SUCCEEDED"
