"""The dbt app's HTTP layer and wiring (app.py builds it from the environment).

A thin Flask layer over settings.py (the environment), validation.py (auth, bodies), registry.py (the
DynamoDB run table), runs.py (create/get, LOST, callbacks), worker.py (the dbt worker thread),
credentials.py (Snowflake secret), callbacks.py (Step Functions). Stateless: any replica answers any
request. Serve it with gunicorn.conf.py (one process, threads; it starts the worker thread and
handles SIGTERM): gunicorn -c gunicorn.conf.py app:app
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import credentials
from callbacks import Callbacks
from flask import Flask, Response, request
from lease import LeaseRenewer
from registry import RunStore, parse_run_id
from runs import RunService
from settings import Settings
from validation import authorize, batch_id_problem, error
from worker import Worker, build_dbt_argv

log = logging.getLogger("dbt-app")

MAX_BODY_BYTES = 64 * 1024
# Fixed for every dbt subprocess (its environment is built from scratch).
DBT_FIXED_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONUNBUFFERED": "1"}


class Runtime:
    """Wires the AWS clients, the run service and the worker for one process."""

    def __init__(self, settings: Settings, session: Any = None, clock: Callable[[], float] = time.time, sfn: Any = None):
        session = session or boto3.session.Session(region_name=settings.aws_region)
        self.settings = settings
        self.session = session
        self.store = RunStore(session.resource("dynamodb", region_name=settings.aws_region).Table(settings.runs_table), clock)
        self.callbacks = Callbacks(sfn or session.client("stepfunctions", region_name=settings.aws_region))
        control = session.resource("dynamodb", region_name=settings.aws_region).Table(settings.control_table) if settings.control_table else None
        self.service = RunService(
            self.store,
            self.callbacks,
            settings.run_lost_after_seconds,
            settings.task_heartbeat_seconds,
            nudge=self._nudge,
            leases=LeaseRenewer(control, clock),
        )
        self.worker: Worker | None = None
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.draining = threading.Event()

    def _nudge(self) -> None:
        if self.worker:
            self.worker.nudge()

    def dbt_env(self) -> dict[str, str]:
        """Reads the Snowflake secret (fails the start if it cannot) and builds dbt's environment."""
        secret = credentials.fetch(self.session.client("secretsmanager", region_name=self.settings.aws_region), self.settings.snowflake_secret_id)
        return {**dict(self.settings.dbt_env), **DBT_FIXED_ENV, **secret}

    def start(self) -> Runtime:
        s = self.settings
        self.worker = Worker(
            self.service,
            self.worker_id,
            argv_for=lambda run: build_dbt_argv(run, s.dbt_bin, s.dbt_target, s.dbt_project_dir, s.dbt_profiles_dir),
            env=self.dbt_env(),
            cwd=s.dbt_project_dir if os.path.isdir(s.dbt_project_dir) else None,
            poll_seconds=s.queue_poll_seconds,
            run_heartbeat=s.run_heartbeat_seconds,
            task_heartbeat=s.task_heartbeat_seconds,
            run_timeout=s.dbt_run_timeout_seconds,
        ).start()
        log.info("dbt worker %s started (table %s, target %s)", self.worker_id, s.runs_table, s.dbt_target)
        return self

    def healthy(self) -> tuple[bool, str]:
        if self.draining.is_set():
            return False, "draining: the pod is shutting down"
        if not self.worker or not self.worker.alive():
            return False, "the dbt worker thread is not running"
        return True, "ok"

    def drain(self) -> None:
        """SIGTERM: fail health checks (the NLB stops sending), let the run finish or interrupt it. Blocks."""
        self.draining.set()
        log.info("draining: waiting up to %g s for the in-flight run", self.settings.shutdown_grace_seconds)
        if self.worker:
            self.worker.shutdown(self.settings.shutdown_grace_seconds)


def reply(status: int, body: dict[str, Any]) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dbt-api"'
    return response


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def create_app(runtime: Runtime) -> Flask:
    app = Flask(__name__)
    app.config["runtime"] = runtime
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    s = runtime.settings
    service = runtime.service

    def denied(write: bool) -> Response | None:
        problem = authorize(request.headers.get("Authorization"), s.api_token, s.api_read_token, write=write)
        return reply(*problem) if problem else None

    @app.get("/healthz", provide_automatic_options=False)
    def healthz() -> Response:
        ok, message = runtime.healthy()
        return reply(200, {"status": "ok"}) if ok else reply(503, {"error": "Unavailable", "message": message})

    @app.post("/api/v1/runs", provide_automatic_options=False)
    def create_run() -> Response:
        no = denied(write=True)
        if no:
            return no
        if request.mimetype != "application/json":
            return reply(*error(415, "UnsupportedMediaType", f"Content-Type is {request.mimetype or '(none)'!r}. Fix: send Content-Type: application/json"))
        try:
            body = json.loads(request.get_data(cache=False) or b"", parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return reply(*error(400, "BadRequest", f"body is not JSON ({str(exc)[:120]}). Fix: send a JSON object"))
        return reply(*service.create(body))

    @app.get("/api/v1/runs/<path:run_id>", provide_automatic_options=False)
    def get_run(run_id: str) -> Response:
        no = denied(write=False)
        if no:
            return no
        parsed = parse_run_id(run_id)
        if not parsed:
            return reply(*error(404, "NotFound", f"no run {run_id[:140]!r}: run ids are <batchId>.<attempt>, e.g. policycenter-20261127T020000Z.1"))
        return reply(*service.get(*parsed))

    @app.get("/api/v1/batches/<path:batch_id>/attempts/<path:attempt>", provide_automatic_options=False)
    def get_attempt(batch_id: str, attempt: str) -> Response:
        no = denied(write=False)
        if no:
            return no
        if batch_id_problem(batch_id) or not (attempt.isascii() and attempt.isdigit() and len(attempt) <= 3 and 1 <= int(attempt)):
            return reply(
                *error(404, "NotFound", f"no run for batch {batch_id[:80]!r} attempt {attempt[:10]!r}: batchId is <pipeline>-<yyyyMMdd>T<HHmmss>Z, attempt 1..999")
            )
        return reply(*service.get(batch_id, int(attempt)))

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return reply(404, {"error": "NotFound", "message": "no such route"})

    @app.errorhandler(405)
    def not_allowed(exc: Exception) -> Response:
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        response = reply(405, {"error": "MethodNotAllowed", "message": f"{request.method} is not allowed on this route (allowed: {', '.join(allowed)})"})
        response.headers["Allow"] = ", ".join(allowed)  # RFC 9110: a 405 must list the allowed methods
        return response

    @app.errorhandler(413)
    def too_large(_: Exception) -> Response:
        return reply(413, {"error": "PayloadTooLarge", "message": f"body is larger than {MAX_BODY_BYTES} bytes"})

    @app.errorhandler(400)
    def bad_request(_: Exception) -> Response:
        return reply(400, {"error": "BadRequest", "message": "malformed request"})

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        code = getattr(exc, "code", None)
        if isinstance(code, int) and 400 <= code < 500:
            return reply(code, {"error": type(exc).__name__, "message": str(getattr(exc, "description", "bad request"))[:200]})
        log.exception("request failed")
        return reply(500, {"error": "InternalError", "message": "the request failed inside the app; retry"})

    return app
