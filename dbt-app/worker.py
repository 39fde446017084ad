"""The dbt worker: one thread per pod claims QUEUED runs (any replica's) and runs dbt, one at a time.

Claiming is a conditional QUEUED -> RUNNING write, so exactly one worker in the region runs a run.
While dbt runs, the worker renews heartbeatAt (conditioned on still owning the run) and sends
SendTaskHeartbeat; losing ownership (someone marked it LOST) kills dbt. On shutdown it lets the run
finish within the grace period, else kills dbt and marks the run INTERRUPTED. No Flask here.
"""

from __future__ import annotations

import collections
import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from callbacks import ALREADY_BUILT_MARKER, FENCE_MARKER, RUN_TIMEOUT_MARKER
from registry import FAILED, INTERRUPTED, RUNNING, SUCCEEDED, plain
from runs import RunService

log = logging.getLogger("dbt-app.worker")

RESERVED_VARS = ("batch_id", "pipeline", "attempt", "run_id", "fence_region", "fence_epoch")
OUTPUT_TAIL_LINES = 20


def dbt_vars(run: dict[str, Any]) -> dict[str, Any]:
    """Request vars, then the server's own (which always win)."""
    variables = json.loads(run.get("varsJson") or "{}")
    fence = plain(run["fence"])
    variables.update(
        batch_id=run["batchId"],
        pipeline=run["pipeline"],
        attempt=plain(run["attempt"]),
        run_id=run["runId"],
        fence_region=fence["region"],
        fence_epoch=fence["epoch"],
    )
    return variables


def build_dbt_argv(run: dict[str, Any], dbt_bin: str, target: str, project_dir: str, profiles_dir: str) -> list[str]:
    """argv without a shell; credentials are never in it (they are in the subprocess env)."""
    argv = [dbt_bin, run["command"], "--project-dir", project_dir, "--profiles-dir", profiles_dir, "--target", target]
    if run.get("select"):
        argv += ["--select", run["select"]]
    argv += ["--vars", json.dumps(dbt_vars(run), sort_keys=True, separators=(",", ":"))]
    return argv


class DbtProcess:
    """A running dbt: keeps the last lines of its output and whether the sink's refusal markers appeared."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None):
        self.tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self.fenced = False
        self.already_built = False
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, name="dbt-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if FENCE_MARKER in line:
                self.fenced = True
            if ALREADY_BUILT_MARKER in line:
                self.already_built = True
            self.tail.append(line.rstrip("\n"))

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)

    def output(self) -> str:
        self._reader.join(timeout=2)
        return "\n".join(self.tail)


class Worker:
    """The pod's single dbt worker thread."""

    def __init__(
        self,
        service: RunService,
        worker_id: str,
        argv_for: Callable[[dict[str, Any]], list[str]],
        env: dict[str, str],
        cwd: str | None,
        poll_seconds: float,
        run_heartbeat: float,
        task_heartbeat: float,
        run_timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.service = service
        self.store = service.store
        self.worker_id = worker_id
        self.argv_for = argv_for
        self._env = env
        self.cwd = cwd
        self.poll_seconds = poll_seconds
        self.run_heartbeat = run_heartbeat
        self.task_heartbeat = task_heartbeat
        self.run_timeout = run_timeout
        self.monotonic = monotonic
        self._wake = threading.Event()
        self._stopping = threading.Event()  # no new work
        self._interrupt = threading.Event()  # kill the in-flight run now
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="dbt-worker", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    def nudge(self) -> None:
        self._wake.set()

    def shutdown(self, grace: float) -> None:
        """Stop taking work; let the in-flight run finish within `grace`, else interrupt it. Blocks."""
        self._stopping.set()
        self._wake.set()
        if not self._idle.wait(grace):
            log.warning("shutdown: run still going after %g s grace; interrupting it", grace)
            self._interrupt.set()
        self._thread.join(timeout=30)

    # --- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self._run_next():
                    self.service.sweep()
                    self._wake.wait(self.poll_seconds)
                    self._wake.clear()
            except Exception:  # AWS hiccups must not kill the worker; the next poll retries
                log.exception("worker %s: poll failed", self.worker_id)
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _run_next(self) -> bool:
        for candidate in self.store.by_status("QUEUED"):
            if self._stopping.is_set():
                return False
            self._idle.clear()
            try:
                run = self.store.claim(candidate, self.worker_id)
                if run is not None:
                    self._execute(run)
                    return True
            finally:
                self._idle.set()
        return False

    def _execute(self, run: dict[str, Any]) -> None:
        log.info("worker %s claimed run %s", self.worker_id, run["runId"])
        for other in self.store.attempts(run["batchId"]):
            if other["runId"] == run["runId"]:
                continue
            other = self.service.settle(other)
            if other["status"] == RUNNING:
                self.service.finish(run, self.worker_id, FAILED, f"refused: attempt {plain(other['attempt'])} of batch {run['batchId']} is RUNNING")
                return
            if other["status"] == SUCCEEDED and other.get("builtAfterLost"):
                # Declared LOST, yet it built: the batch is built once; this attempt adopts that build.
                log.warning("run %s adopts the build of %s (declared LOST, then succeeded)", run["runId"], other["runId"])
                self.service.finish(run, self.worker_id, SUCCEEDED, None, {"adoptedRun": other["runId"]})
                return
        try:
            proc = DbtProcess(self.argv_for(run), self._env, self.cwd)
        except OSError as exc:
            self.service.finish(run, self.worker_id, FAILED, f"could not start dbt: {exc}")
            return
        started = self.monotonic()
        next_renew = started + self.run_heartbeat
        next_task_beat = started  # tell the workflow at once that the run is alive
        run_timeout = self.run_timeout_of(run)
        keeps_alive = bool(run.get("taskToken") or run.get("lease"))
        while True:
            now = self.monotonic()
            if now >= next_task_beat:
                if keeps_alive:
                    self.service.keep_alive(run)
                self._beat_queued()
                next_task_beat = now + self.task_heartbeat
            wait_until = min(next_renew, next_task_beat, started + run_timeout)
            code = self._wait(proc, wait_until - now)
            if code is not None:
                break
            now = self.monotonic()
            if self._interrupt.is_set():
                proc.kill()
                self.service.finish(
                    run, self.worker_id, INTERRUPTED, "interrupted: the pod was stopped (SIGTERM) and the run did not finish within the shutdown grace period"
                )
                return
            if now >= started + run_timeout:
                proc.kill()
                self.service.finish(run, self.worker_id, FAILED, f"{RUN_TIMEOUT_MARKER}: dbt did not finish within {run_timeout:g} s of starting")
                return
            if now >= next_renew:
                renewed = self.store.renew(run, self.worker_id)
                if renewed is None:
                    log.warning("run %s is no longer ours (marked LOST?); killing dbt", run["runId"])
                    proc.kill()
                    return
                run = renewed  # carries the newest task token
                next_renew = now + self.run_heartbeat
        output = proc.output()
        if proc.already_built and not proc.fenced:
            # The warehouse holds a SUCCEEDED build of this batch (another attempt, or a stale region's
            # duplicate): the batch is built once, so this run succeeds without building.
            log.warning("run %s: the warehouse already holds a build of %s; recorded SUCCEEDED (alreadyBuilt)", run["runId"], run["batchId"])
            self.service.finish(run, self.worker_id, SUCCEEDED, None, {"alreadyBuilt": True})
        elif code == 0 and not proc.fenced:
            self.service.finish(run, self.worker_id, SUCCEEDED, None)
        elif proc.fenced:
            self.service.finish(run, self.worker_id, FAILED, f"{FENCE_MARKER}: the warehouse fence refused this build (fence {plain(run['fence'])})\n{output}")
        else:
            self.service.finish(run, self.worker_id, FAILED, "dbt exited %d: %s" % (code, output or "(no output)"))

    def _beat_queued(self) -> None:
        """Heartbeats for the runs queued behind this one; a failure is logged, the run carries on."""
        try:
            self.service.beat_queued()
        except Exception:  # noqa: BLE001 - housekeeping must not end a running build
            log.exception("worker %s: heartbeats of queued runs failed", self.worker_id)

    def run_timeout_of(self, run: dict[str, Any]) -> float:
        """DBT_RUN_TIMEOUT_SECONDS, or the run's own `deadlines.maxRunMinutes` when shorter (counted from RUNNING)."""
        limit = (run.get("deadlines") or {}).get("maxRunMinutes")
        return min(self.run_timeout, int(limit) * 60) if limit else self.run_timeout

    def _wait(self, proc: DbtProcess, timeout: float) -> int | None:
        """Waits for dbt, waking early on an interrupt request."""
        deadline = self.monotonic() + max(timeout, 0)
        while True:
            code = proc.wait(min(0.2, max(deadline - self.monotonic(), 0)))
            if code is not None or self._interrupt.is_set() or self.monotonic() >= deadline:
                return code
