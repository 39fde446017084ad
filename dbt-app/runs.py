"""The run service: the API's create/get and the state changes shared by the worker and the sweeps.

Decisions (docs/dbt-api.md): the key is (batchId, attempt) and runId = <batchId>.<attempt>; the same
key and parameters answer 200 with the existing run on any replica; different parameters, or a new
attempt while another attempt is QUEUED/RUNNING (and not stale), answer 409. Whoever wins the
conditional write of a terminal state sends the task-token callback, so each terminal state is
reported once per token. No Flask here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from callbacks import Callbacks
from registry import ACTIVE, QUEUED, RUNNING, SAME_REQUEST_FIELDS, TERMINAL, RunStore, is_stale, plain, run_id, view
from validation import Response, error, validate_create

log = logging.getLogger("dbt-app.runs")


class RunService:
    def __init__(self, store: RunStore, callbacks: Callbacks, lost_after: float, task_heartbeat: float, nudge: Callable[[], None] = lambda: None):
        self.store = store
        self.callbacks = callbacks
        self.lost_after = lost_after
        self.task_heartbeat = task_heartbeat
        self.nudge = nudge

    # --- API ------------------------------------------------------------------------------------

    def create(self, body: Any) -> Response:
        request, problem = validate_create(body)
        if problem:
            return problem
        assert request is not None
        batch_id, attempt = request["batchId"], request["attempt"]
        existing = self.store.get(batch_id, attempt)
        if existing is None:
            for other in self.store.attempts(batch_id):
                other = self.settle(other)
                if other["status"] in ACTIVE:
                    return error(
                        409,
                        "Conflict",
                        f"batch {batch_id} has attempt {plain(other['attempt'])} still {other['status']}; wait for it to end (or become LOST)",
                        runId=other["runId"],
                    )
            item = self.store.new_item(request)
            if self.store.put_new(item):
                log.info("run %s queued", item["runId"])
                self.nudge()
                return 202, view(item)
            existing = self.store.get(batch_id, attempt)  # another replica created it a moment ago
            assert existing is not None
        wanted = self.store.new_item(request)
        different = [f for f in SAME_REQUEST_FIELDS if plain(existing.get(f)) != plain(wanted.get(f))]
        if different:
            return error(409, "Conflict", f"batch {batch_id} attempt {attempt} exists with different {', '.join(different)}", runId=existing["runId"])
        token = request.get("taskToken")
        if token and token != existing.get("taskToken"):
            # A Step Functions task retry brings a new token: it replaces the old one.
            existing = self.store.set_token(existing, token) or existing
            log.info("run %s: task token replaced", existing["runId"])
            if existing["status"] in TERMINAL:
                self.deliver(existing)
        return 200, view(self.settle(existing))

    def get(self, batch_id: str, attempt: int) -> Response:
        run = self.store.get(batch_id, attempt)
        if run is None:
            return error(404, "NotFound", f"no run {run_id(batch_id, attempt)}")
        return 200, view(self.settle(run))

    # --- state changes --------------------------------------------------------------------------

    def settle(self, run: dict[str, Any]) -> dict[str, Any]:
        """A RUNNING run whose heartbeat is stale is LOST: persist that (once) and report it."""
        if is_stale(run, self.store.clock(), self.lost_after):
            return self.mark_lost(run) or self.store.get(run["batchId"], int(run["attempt"])) or run
        return run

    def mark_lost(self, run: dict[str, Any]) -> dict[str, Any] | None:
        message = f"worker {run.get('workerId')} stopped heartbeating (last heartbeat {run.get('heartbeatAt')}, lost after {self.lost_after:g} s)"
        lost = self.store.mark_lost(run, message)
        if lost is not None:
            log.warning("run %s marked LOST: %s", lost["runId"], message)
            self.deliver(lost)
        return lost

    def finish(self, run: dict[str, Any], worker_id: str, status: str, message: str | None) -> dict[str, Any] | None:
        done = self.store.finish_owned(run, worker_id, status, message)
        if done is None:
            log.warning("run %s was ended by someone else before %s could mark it %s", run["runId"], worker_id, status)
            return None
        log.info("run %s %s", done["runId"], status)
        self.deliver(done)
        return done

    def deliver(self, run: dict[str, Any]) -> None:
        """The terminal callback, if the run carries a token; its outcome is recorded, never raised."""
        if not run.get("taskToken"):
            return
        self.store.record_callback(run, self.callbacks.terminal(run))

    def sweep(self) -> None:
        """Idle-worker housekeeping: stale RUNNING -> LOST; SendTaskHeartbeat for QUEUED runs."""
        for run in self.store.by_status(RUNNING):
            self.settle(run)
        for run in self.store.by_status(QUEUED):
            if run.get("taskToken") and self.store.claim_task_heartbeat(run, self.task_heartbeat):
                problem = self.callbacks.heartbeat(run)
                if problem:
                    self.store.record_callback(run, problem)
