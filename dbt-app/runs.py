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

from callbacks import QUEUE_TIMEOUT_MARKER, Callbacks
from lease import LeaseRenewer
from registry import ACTIVE, QUEUED, RUNNING, SAME_REQUEST_FIELDS, SUCCEEDED, TERMINAL, RunStore, epoch_of, is_stale, plain, run_id, view
from validation import Response, error, validate_create

log = logging.getLogger("dbt-app.runs")


class RunService:
    def __init__(
        self,
        store: RunStore,
        callbacks: Callbacks,
        lost_after: float,
        task_heartbeat: float,
        nudge: Callable[[], None] = lambda: None,
        leases: LeaseRenewer | None = None,
    ):
        self.store = store
        self.callbacks = callbacks
        self.leases = leases or LeaseRenewer(None, store.clock)
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
            existing = self.store.set_token(existing, token, request.get("lease")) or existing
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

    def finish(self, run: dict[str, Any], worker_id: str, status: str, message: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        done = self.store.finish_owned(run, worker_id, status, message, extra)
        if done is None:
            if status == SUCCEEDED and (corrected := self.store.correct_lost(run, worker_id)) is not None:
                # Its workflow already heard DbtRunLost and starts the next attempt, which adopts this build.
                log.warning("run %s was marked LOST but its dbt succeeded: recorded SUCCEEDED (builtAfterLost)", run["runId"])
                return corrected
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
        """Idle-worker housekeeping: stale RUNNING -> LOST; QUEUED past its queue deadline -> FAILED;
        for the other QUEUED runs, once per interval across replicas, SendTaskHeartbeat and the lease."""
        for run in self.store.by_status(RUNNING):
            self.settle(run)
        self.beat_queued()

    def beat_queued(self) -> None:
        """QUEUED runs: the queue deadline, and (once per interval across replicas) SendTaskHeartbeat and
        the lease. Busy workers call it too: when every worker runs dbt, a run queued behind them would
        otherwise hear nothing, and its workflow would time out on heartbeats and give up on a live run."""
        for run in self.store.by_status(QUEUED):
            if self.queue_expired(run):
                continue
            if (run.get("taskToken") or run.get("lease")) and self.store.claim_task_heartbeat(run, self.task_heartbeat):
                self.keep_alive(run)

    def keep_alive(self, run: dict[str, Any]) -> None:
        """The run is alive: tell the waiting workflow, and push its pipeline lock's lease forward."""
        if run.get("taskToken"):
            problem = self.callbacks.heartbeat(run)
            if problem:
                self.store.record_callback(run, problem)
        self.leases.renew(run)

    def queue_expired(self, run: dict[str, Any]) -> bool:
        """A QUEUED run past `deadlines.maxQueueMinutes` ends FAILED (callback DbtRunQueueTimeout)."""
        deadlines = run.get("deadlines") or {}
        limit = deadlines.get("maxQueueMinutes")
        if not limit or not run.get("queuedAt") or self.store.clock() < epoch_of(run["queuedAt"]) + int(limit) * 60:
            return False
        failed = self.store.fail_queued(run, f"{QUEUE_TIMEOUT_MARKER}: still QUEUED {int(limit)} minutes after {run['queuedAt']} (no free worker)")
        if failed is not None:
            log.warning("run %s: queue deadline passed", failed["runId"])
            self.deliver(failed)
        return True
