"""Reference Flask app for the dbt REST contract (docs/dbt-api.md, docs/dbt-api.openapi.yaml).

All logic lives in runs.py (no Flask there, so it is unit-tested without Flask). Environment:
  API_TOKEN                 bearer token for POST and GET (required; mounted from a Kubernetes Secret)
  API_READ_TOKEN            optional read-only token (GET only; POST gets 403)
  DBT_BIN                   dbt executable (default "dbt")
  DBT_PROJECT_DIR           working directory for dbt (default /app/dbt_project)
  DBT_RUN_TIMEOUT_SECONDS   kill a run after this long (default 14400)
Run with ONE process (the registry is in-memory): gunicorn -w 1 --threads 8 -b 0.0.0.0:8080 app:app
"""

import os

from flask import Flask, jsonify, request
from runs import RunRegistry, Worker, authorize, subprocess_runner


def create_app(registry=None, worker=None, token=None, read_token=None):
    token = token if token is not None else os.environ.get("API_TOKEN", "")
    if not token:
        raise RuntimeError("API_TOKEN is not set; mount it from the dbt-api-token Kubernetes Secret")
    read_token = read_token if read_token is not None else os.environ.get("API_READ_TOKEN") or None
    registry = registry or RunRegistry()
    if worker is None:
        runner = subprocess_runner(
            dbt_bin=os.environ.get("DBT_BIN", "dbt"),
            timeout_seconds=float(os.environ.get("DBT_RUN_TIMEOUT_SECONDS", "14400")),
            cwd=os.environ.get("DBT_PROJECT_DIR", "/app/dbt_project"),
        )
        worker = Worker(registry, runner).start()

    app = Flask(__name__)
    app.config["registry"] = registry
    app.config["worker"] = worker

    def reply(result):
        status, body = result
        response = jsonify(body)
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="dbt-api"'
        return response

    @app.get("/healthz")
    def healthz():
        if not worker.alive():
            return reply((503, {"status": "unhealthy", "message": "dbt worker thread is not running"}))
        return reply((200, {"status": "ok", "runs": registry.counts()}))

    @app.post("/api/v1/runs")
    def create_run():
        denied = authorize(request.headers.get("Authorization"), token, read_token, write=True)
        if denied:
            return reply(denied)
        body = request.get_json(silent=True)
        if body is None:
            return reply((400, {"error": "BadRequest", "message": "body must be JSON (Content-Type: application/json)"}))
        return reply(registry.create(body))

    @app.get("/api/v1/runs/<run_id>")
    def get_run(run_id):
        denied = authorize(request.headers.get("Authorization"), token, read_token, write=False)
        if denied:
            return reply(denied)
        return reply(registry.get(run_id))

    @app.errorhandler(404)
    def not_found(_):
        return reply((404, {"error": "NotFound", "message": "no such route"}))

    @app.errorhandler(405)
    def not_allowed(_):
        return reply((405, {"error": "MethodNotAllowed", "message": "method not allowed on this route"}))

    return app


if os.environ.get("API_TOKEN"):
    app = create_app()
