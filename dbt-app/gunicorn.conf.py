"""gunicorn settings for the dbt app: gunicorn -c gunicorn.conf.py app:app

- Binds 0.0.0.0:$PORT (from settings.py; a bad environment exits here with one message).
- ONE worker process with threads: the dbt worker thread runs inside it (started in post_worker_init,
  after the app and its settings loaded), and dbt builds on one pod must not overlap.
- SIGTERM (kubelet -> arbiter -> worker): the worker keeps serving while it drains. /healthz answers
  503 so the NLB stops sending, the in-flight run gets SHUTDOWN_GRACE_SECONDS to finish, else dbt is
  killed and the run marked INTERRUPTED (with its failure callback); only then does the worker exit.
  graceful_timeout (the arbiter's SIGKILL deadline) = grace + 10 s, and the pod's
  terminationGracePeriodSeconds must exceed that (grace 100 s -> graceful_timeout 110 s -> pod 130 s).
"""

import logging
import signal
import sys
import threading

import settings

try:
    _settings = settings.load()
except settings.SettingsError as exc:
    print(str(exc), file=sys.stderr, flush=True)
    raise SystemExit(2) from None

bind = f"0.0.0.0:{_settings.port}"
workers = 1
worker_class = "gthread"
threads = 8
timeout = 60
graceful_timeout = int(_settings.shutdown_grace_seconds) + 10
worker_tmp_dir = "/tmp"
errorlog = "-"
loglevel = "info"


def post_worker_init(worker):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    runtime = worker.wsgi.config["runtime"]
    runtime.start()  # reads the Snowflake secret; failing here fails the boot, loudly
    exit_worker = worker.handle_exit

    def on_sigterm(sig, frame):
        if runtime.draining.is_set():
            return

        def drain_then_exit():
            try:
                runtime.drain()
            finally:
                exit_worker(sig, None)

        threading.Thread(target=drain_then_exit, name="drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
