"""Run registry, validation, auth and the dbt worker for the reference dbt API (docs/dbt-api.md).

Pure standard library: no Flask here, so it is testable without Flask installed. app.py is a
thin Flask layer over this module.

Contract decisions implemented here:
- Idempotency key is (batchId, attempt); attempt defaults to 1. A repeat with the same key and the
  same parameters returns the existing run with 200; a new run answers 202.
- The same key with different parameters is 409. A new attempt while another attempt of the same
  batch is QUEUED or RUNNING is 409.
- 401: no/malformed/unknown bearer token. 403: a valid read-only token on POST.
- 400: body is not a JSON object. 422: a JSON object that fails validation.
"""

from __future__ import annotations

import hmac
import json
import queue
import re
import subprocess
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

BATCH_ID_RE = re.compile(r"^([a-z][a-z0-9-]{0,22}[a-z0-9])-(\d{8})T(\d{6})Z$")
SELECT_RE = re.compile(r"^[A-Za-z0-9_.:+*@,/ -]{1,1000}$")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
COMMANDS = ("build", "run", "test", "seed", "snapshot")
STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")
ACTIVE = ("QUEUED", "RUNNING")

Response = tuple[int, dict[str, Any]]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": code, "message": message}
    body.update(extra)
    return status, body


# --- auth -------------------------------------------------------------------------------------


def authorize(header: str | None, token: str, read_token: str | None = None, write: bool = True) -> Response | None:
    """None if allowed, else the 401/403 response. Constant-time comparisons."""
    if not token:
        raise ValueError("API_TOKEN is empty; refusing to run an unauthenticated API")
    match = re.match(r"^Bearer (\S+)$", header or "")
    if not match:
        return error(401, "Unauthorized", "missing or malformed Authorization: Bearer <token>")
    presented = match.group(1).encode()
    if hmac.compare_digest(presented, token.encode()):
        return None
    if read_token and hmac.compare_digest(presented, read_token.encode()):
        return error(403, "Forbidden", "this token may read runs but not start them") if write else None
    return error(401, "Unauthorized", "invalid bearer token")


# --- validation -------------------------------------------------------------------------------


def batch_id_problem(batch_id: Any) -> str | None:
    if not isinstance(batch_id, str):
        return "batchId: required string"
    m = BATCH_ID_RE.match(batch_id)
    if not m:
        return "batchId: not <pipeline>-<yyyyMMdd>T<HHmmss>Z"
    try:
        datetime.strptime(m.group(2) + m.group(3), "%Y%m%d%H%M%S")
    except ValueError:
        return "batchId: names no real UTC time"
    return None


def validate_create(body: Any) -> tuple[dict[str, Any] | None, Response | None]:
    """(request, None) or (None, 400/422 response)."""
    if not isinstance(body, dict):
        return None, error(400, "BadRequest", "body must be a JSON object")
    problems: list[str] = []
    allowed = {"batchId", "pipeline", "command", "select", "vars", "attempt"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        problems.append("unknown fields: " + ", ".join(unknown))
    problem = batch_id_problem(body.get("batchId"))
    if problem:
        problems.append(problem)
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, str):
        problems.append("pipeline: required string")
    elif not problem and BATCH_ID_RE.match(body["batchId"]).group(1) != pipeline:
        problems.append(f"batchId: belongs to another pipeline than {pipeline!r}")
    command = body.get("command", "build")
    if command not in COMMANDS:
        problems.append("command: must be one of " + ", ".join(COMMANDS))
    select = body.get("select")
    if select is not None and (not isinstance(select, str) or not SELECT_RE.match(select)):
        problems.append("select: must be a dbt selector string (letters, digits, _ . : + * @ , / - and spaces)")
    variables = body.get("vars")
    if variables is not None and not isinstance(variables, dict):
        problems.append("vars: must be an object")
    attempt = body.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        problems.append("attempt: must be an integer >= 1")
    if problems:
        return None, error(422, "ValidationError", "; ".join(problems))
    return {
        "batchId": body["batchId"],
        "pipeline": pipeline,
        "command": command,
        "select": select,
        "vars": variables,
        "attempt": attempt,
    }, None


# --- dbt command line -------------------------------------------------------------------------


def build_dbt_argv(run: dict[str, Any], dbt_bin: str = "dbt") -> list[str]:
    """The argv for a run. No shell is involved; batch_id and pipeline are always passed as vars."""
    argv = [dbt_bin, run["command"]]
    if run.get("select"):
        argv += ["--select", run["select"]]
    variables = dict(run.get("vars") or {})
    variables.update({"batch_id": run["batchId"], "pipeline": run["pipeline"]})
    argv += ["--vars", json.dumps(variables, sort_keys=True, separators=(",", ":"))]
    return argv


# --- registry ---------------------------------------------------------------------------------


class RunRegistry:
    """In-memory, thread-safe registry of runs keyed by runId and by (batchId, attempt).

    It lives in one process: run the app with one gunicorn worker process (threads are fine).
    Several pods do NOT share it; see docs/dbt-api.md "Replicas".
    """

    def __init__(self, clock: Callable[[], str] = utc_now, new_id: Callable[[], str] = lambda: "run-" + uuid.uuid4().hex):
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}
        self._by_key: dict[tuple[str, int], str] = {}
        self._clock = clock
        self._new_id = new_id
        self.on_created: Callable[[dict[str, Any]], None] = lambda run: None

    @staticmethod
    def view(run: dict[str, Any]) -> dict[str, Any]:
        out = {k: run[k] for k in ("runId", "batchId", "pipeline", "command", "attempt", "status", "startedAt", "finishedAt")}
        if run.get("error"):
            out["error"] = run["error"]
        return out

    def create(self, body: Any) -> Response:
        request, problem = validate_create(body)
        if problem:
            return problem
        assert request is not None
        key = (request["batchId"], request["attempt"])
        with self._lock:
            existing_id = self._by_key.get(key)
            if existing_id:
                existing = self._runs[existing_id]
                same = all(existing[f] == request[f] for f in ("pipeline", "command", "select", "vars"))
                if not same:
                    return error(409, "Conflict", "batch %s attempt %d exists with different parameters" % key, runId=existing_id)
                return 200, {"runId": existing_id, "status": existing["status"]}
            for other in self._runs.values():
                if other["batchId"] == request["batchId"] and other["status"] in ACTIVE:
                    return error(
                        409,
                        "Conflict",
                        "batch %s has attempt %d still %s" % (other["batchId"], other["attempt"], other["status"]),
                        runId=other["runId"],
                    )
            run = dict(request)
            run.update(runId=self._new_id(), status="QUEUED", createdAt=self._clock(), startedAt=None, finishedAt=None, error=None)
            self._runs[run["runId"]] = run
            self._by_key[key] = run["runId"]
        self.on_created(dict(run))
        return 202, {"runId": run["runId"], "status": "QUEUED"}

    def get(self, run_id: str) -> Response:
        if not RUN_ID_RE.match(run_id or ""):
            return error(404, "NotFound", f"no run {run_id!r}")
        with self._lock:
            run = self._runs.get(run_id)
            if not run:
                return error(404, "NotFound", f"no run {run_id!r}")
            return 200, self.view(run)

    def snapshot(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._runs[run_id])

    def mark_running(self, run_id: str) -> None:
        with self._lock:
            run = self._runs[run_id]
            run["status"] = "RUNNING"
            run["startedAt"] = self._clock()

    def mark_finished(self, run_id: str, ok: bool, message: str | None = None) -> None:
        with self._lock:
            run = self._runs[run_id]
            run["status"] = "SUCCEEDED" if ok else "FAILED"
            run["finishedAt"] = self._clock()
            run["error"] = None if ok else (message or "dbt failed without output")

    def counts(self) -> dict[str, int]:
        with self._lock:
            out = {s: 0 for s in STATUSES}
            for run in self._runs.values():
                out[run["status"]] += 1
            return out


# --- worker -----------------------------------------------------------------------------------

Runner = Callable[[dict[str, Any]], tuple[bool, str | None]]


def subprocess_runner(dbt_bin: str = "dbt", timeout_seconds: float = 4 * 3600, cwd: str | None = None) -> Runner:
    """Runs dbt; (True, None) on exit 0, else (False, the last lines of its output)."""

    def run(run_record: dict[str, Any]) -> tuple[bool, str | None]:
        argv = build_dbt_argv(run_record, dbt_bin)
        try:
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_seconds, check=False)
        except subprocess.TimeoutExpired:
            return False, "dbt did not finish within %d s" % timeout_seconds
        except OSError as exc:
            return False, f"could not start dbt: {exc}"
        if proc.returncode == 0:
            return True, None
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        return False, "dbt exited %d: %s" % (proc.returncode, "\n".join(tail))

    return run


class Worker:
    """One background thread running queued runs one at a time (dbt builds must not overlap)."""

    def __init__(self, registry: RunRegistry, runner: Runner):
        self.registry = registry
        self.runner = runner
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="dbt-worker", daemon=True)
        self._drain_events: dict[int, threading.Event] = {}
        registry.on_created = lambda run: self._queue.put(run["runId"])

    def start(self) -> Worker:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def drain(self, timeout: float = 5.0) -> None:
        """Test helper: wait until everything queued so far has been processed."""
        done = threading.Event()
        self._queue.put("__drain__:%d" % id(done))
        self._drain_events[id(done)] = done
        if not done.wait(timeout):
            raise TimeoutError(f"worker did not drain in {timeout:.1f} s")

    def _loop(self) -> None:
        while True:
            run_id = self._queue.get()
            if run_id is None:
                return
            if run_id.startswith("__drain__:"):
                self._drain_events.pop(int(run_id.split(":", 1)[1])).set()
                continue
            self.registry.mark_running(run_id)
            try:
                ok, message = self.runner(self.registry.snapshot(run_id))
            except Exception as exc:  # a runner bug must not kill the worker
                ok, message = False, f"runner error: {exc!r}"
            self.registry.mark_finished(run_id, ok, message)
