"""Step Functions task-token callbacks (the workflow waits on .waitForTaskToken; docs/dbt-api.md).

A callback failure (TaskTimedOut, InvalidToken, network) is logged WITHOUT the token and returned as
text; it never changes the run's status. The token itself is never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from registry import FAILED, INTERRUPTED, LOST, SUCCEEDED, plain

log = logging.getLogger("dbt-app.callbacks")

OUTPUT_FIELDS = ("runId", "batchId", "pipeline", "attempt", "status", "queuedAt", "startedAt", "finishedAt")
FAILURE_ERRORS = {FAILED: "DbtRunFailed", LOST: "DbtRunLost", INTERRUPTED: "DbtRunInterrupted"}
FENCED_ERROR = "DbtRunFenced"
FENCE_MARKER = "STALE_FENCE"  # printed by the warehouse fence check when a build carries a stale epoch
# Printed by the warehouse's exactly-once check when the batch already has a SUCCEEDED build: the run
# is recorded SUCCEEDED (alreadyBuilt) and answered with SendTaskSuccess, not a failure.
ALREADY_BUILT_MARKER = "ALREADY_BUILT"
# Error texts the app itself writes when a run's own deadline passes (POST `deadlines`).
QUEUE_TIMEOUT_MARKER = "QUEUE_TIMEOUT"
RUN_TIMEOUT_MARKER = "RUN_TIMEOUT"
MAX_CAUSE = 32_000  # SendTaskFailure's cause is at most 32,768 characters


def output_of(run: dict[str, Any]) -> dict[str, Any]:
    out = {f: plain(run.get(f)) for f in OUTPUT_FIELDS}
    if run.get("alreadyBuilt"):
        out["alreadyBuilt"] = True  # the execution's history says this run built nothing
    return out


def error_name(run: dict[str, Any]) -> str:
    text = run.get("error") or ""
    if run["status"] == FAILED and text.startswith(QUEUE_TIMEOUT_MARKER):
        return "DbtRunQueueTimeout"
    if run["status"] == FAILED and text.startswith(RUN_TIMEOUT_MARKER):
        return "DbtRunTimeout"
    if run["status"] == FAILED and FENCE_MARKER in text:
        return FENCED_ERROR
    return FAILURE_ERRORS[run["status"]]


class Callbacks:
    """Wraps a boto3 `stepfunctions` client (or any object with the same three methods)."""

    def __init__(self, sfn: Any):
        self.sfn = sfn

    def _call(self, what: str, run: dict[str, Any], **kwargs: Any) -> str | None:
        try:
            getattr(self.sfn, what)(taskToken=run["taskToken"], **kwargs)
            return None
        except Exception as exc:  # any failure is reported, never raised: the run's record stays the truth
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
            message = f"{what} failed: {code or type(exc).__name__}"
            log.warning("callback %s for run %s failed: %s", what, run.get("runId"), code or type(exc).__name__)
            return message

    def terminal(self, run: dict[str, Any]) -> str | None:
        """Success or failure for a terminal run; the error text, or None when delivered."""
        if run["status"] == SUCCEEDED:
            return self._call("send_task_success", run, output=json.dumps(output_of(run)))
        cause = json.dumps({**output_of(run), "error": (run.get("error") or "")[-4000:]})[:MAX_CAUSE]
        return self._call("send_task_failure", run, error=error_name(run), cause=cause)

    def heartbeat(self, run: dict[str, Any]) -> str | None:
        return self._call("send_task_heartbeat", run)
