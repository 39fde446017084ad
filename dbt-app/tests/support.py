"""Shared test support: valid environments, the fake dbt, AWS fixtures, a callback recorder, a proxy."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import registry

HERE = Path(__file__).resolve().parent
APP_DIR = HERE.parent
REGION = "us-east-1"
TABLE = "etl-dbt-runs-us-east-1"
SECRET_ID = "etl-platform/snowflake-credentials"
API_TOKEN = "t0ken-for-tests-0123456789abcdef"
READ_TOKEN = "read-only-token-0123456789abcdef"
BATCH = "policycenter-20261127T020000Z"
FENCE = {"region": "us-east-1", "epoch": 3}
SECRET = {
    "account": "acme-xy12345",
    "user": "DBT_SVC_USER",
    "password": "pa55-Very-Secret-Value-9f8e7d",
    "role": "TRANSFORMER",
    "warehouse": "TRANSFORM_WH",
    "database": "ANALYTICS",
}


def body(**overrides: Any) -> dict[str, Any]:
    b = {"batchId": BATCH, "pipeline": "policycenter", "command": "build", "select": "tag:semantic", "fence": dict(FENCE)}
    b.update(overrides)
    return {k: v for k, v in b.items() if v is not None}


def env_for(project_dir: Path, dbt_bin: Path | str, **overrides: str) -> dict[str, str]:
    """A valid contract environment (strings, as a pod would have them)."""
    env = {
        "DBT_API_TOKEN": API_TOKEN,
        "DBT_API_READ_TOKEN": READ_TOKEN,
        "PORT": "8080",
        "AWS_REGION": REGION,
        "DBT_RUNS_TABLE": TABLE,
        "SNOWFLAKE_SECRET_ID": SECRET_ID,
        "DBT_TARGET": "prod",
        "DBT_PROJECT_DIR": str(project_dir),
        "DBT_PROFILES_DIR": str(APP_DIR / "profiles"),
        "DBT_BIN": str(dbt_bin),
        "PATH": os.defpath,
        "HOME": str(project_dir),
        "TMPDIR": str(project_dir),
        "RUN_HEARTBEAT_SECONDS": "0.3",
        "RUN_LOST_AFTER_SECONDS": "2",
        "TASK_HEARTBEAT_SECONDS": "0.3",
        "QUEUE_POLL_SECONDS": "0.3",
        "SHUTDOWN_GRACE_SECONDS": "3",
        "DBT_RUN_TIMEOUT_SECONDS": "60",
    }
    env.update(overrides)
    return env


def write_fake_dbt(directory: Path) -> Path:
    """Copies tests/fake_dbt.py as an executable with this interpreter's shebang."""
    target = directory / "dbt"
    source = (HERE / "fake_dbt.py").read_text(encoding="utf-8")
    target.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
    target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return target


def invocations(project_dir: Path) -> list[dict[str, Any]]:
    path = project_dir / "invocations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def create_aws(session: Any, secret: dict[str, Any] | None = None) -> None:
    """The runs table (from registry's constants) and the Snowflake secret."""
    session.client("dynamodb", region_name=REGION).create_table(**registry.table_definition(TABLE))
    session.client("secretsmanager", region_name=REGION).create_secret(Name=SECRET_ID, SecretString=json.dumps(secret or SECRET))


def table_items(session: Any) -> list[dict[str, Any]]:
    return session.resource("dynamodb", region_name=REGION).Table(TABLE).scan()["Items"]


def clear_table(session: Any) -> None:
    table = session.resource("dynamodb", region_name=REGION).Table(TABLE)
    for item in table.scan()["Items"]:
        table.delete_item(Key={registry.PK: item[registry.PK], registry.SK: item[registry.SK]})


class RecordingSfn:
    """Stands in for the boto3 stepfunctions client; records every call (token included)."""

    def __init__(self, fail_with: Exception | None = None):
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_with = fail_with
        self.lock = threading.Lock()

    def _record(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((name, kwargs))
        if self.fail_with:
            raise self.fail_with
        return {}

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("send_task_success", kwargs)

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("send_task_failure", kwargs)

    def send_task_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("send_task_heartbeat", kwargs)

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [k for n, k in self.calls if n == name]


class Clock:
    """An injectable epoch clock."""

    def __init__(self, start: float = 1_795_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_for(predicate: Any, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RoundRobinProxy:
    """A loopback TCP proxy: each new connection goes to the next backend (like an NLB without
    affinity); a backend that refuses the connection is skipped (the NLB's health check)."""

    def __init__(self, backends: list[int]):
        self.backends = list(backends)
        self.next = 0
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.routed: list[int] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _pick(self) -> socket.socket | None:
        with self.lock:
            order = [self.backends[(self.next + i) % len(self.backends)] for i in range(len(self.backends))]
            self.next += 1
        for port in order:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                upstream.settimeout(None)
                self.routed.append(port)
                return upstream
            except OSError:
                continue
        return None

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = self._pick()
            if upstream is None:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self.server.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def copy_profiles(target: Path) -> Path:
    shutil.copytree(APP_DIR / "profiles", target)
    return target
