"""Unit tests for runs.py (standard library only; Flask is not needed).

python3 -m unittest discover -s dbt-app -p 'test_*.py'
"""

import json
import os
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runs  # noqa: E402
from runs import RunRegistry, Worker, authorize, build_dbt_argv, subprocess_runner, validate_create  # noqa: E402

BATCH = "policycenter-20261127T020000Z"


def body(**overrides):
    b = {"batchId": BATCH, "pipeline": "policycenter", "command": "build", "select": "tag:semantic"}
    b.update(overrides)
    return b


class AuthTest(unittest.TestCase):
    def test_valid_token(self):
        self.assertIsNone(authorize("Bearer s3cret", "s3cret"))

    def test_missing_or_malformed_header_is_401(self):
        for header in (None, "", "s3cret", "Basic s3cret", "Bearer", "Bearer  "):
            status, payload = authorize(header, "s3cret")
            self.assertEqual(status, 401, header)
            self.assertEqual(payload["error"], "Unauthorized")

    def test_wrong_token_is_401(self):
        self.assertEqual(authorize("Bearer nope", "s3cret")[0], 401)

    def test_read_token_gets_403_on_write_and_passes_on_read(self):
        self.assertEqual(authorize("Bearer ro", "s3cret", read_token="ro", write=True)[0], 403)
        self.assertIsNone(authorize("Bearer ro", "s3cret", read_token="ro", write=False))

    def test_empty_server_token_refuses_to_run(self):
        with self.assertRaises(ValueError):
            authorize("Bearer x", "")


class ValidationTest(unittest.TestCase):
    def assert_problem(self, b, status, fragment):
        request, problem = validate_create(b)
        self.assertIsNone(request)
        self.assertEqual(problem[0], status)
        self.assertIn(fragment, problem[1]["message"])

    def test_defaults(self):
        request, problem = validate_create({"batchId": BATCH, "pipeline": "policycenter"})
        self.assertIsNone(problem)
        self.assertEqual(request["command"], "build")
        self.assertEqual(request["attempt"], 1)

    def test_not_an_object_is_400(self):
        self.assert_problem([1, 2], 400, "JSON object")

    def test_invalid_fields_are_422(self):
        self.assert_problem(body(batchId="policycenter-2026-11-27"), 422, "batchId")
        self.assert_problem(body(batchId="policycenter-20261331T020000Z"), 422, "no real UTC time")
        self.assert_problem(body(pipeline="billingcenter"), 422, "another pipeline")
        self.assert_problem(body(command="run-operation"), 422, "command")
        self.assert_problem(body(select="a; rm -rf /"), 422, "select")
        self.assert_problem(body(vars=[1]), 422, "vars")
        self.assert_problem(body(attempt=0), 422, "attempt")
        self.assert_problem(body(attempt=True), 422, "attempt")
        self.assert_problem(body(extra=1), 422, "unknown fields: extra")


class ArgvTest(unittest.TestCase):
    def test_argv_has_select_and_vars_with_batch_id(self):
        argv = build_dbt_argv(dict(body(vars={"full_refresh_tables": ["a"]}), batchId=BATCH))
        self.assertEqual(argv[:4], ["dbt", "build", "--select", "tag:semantic"])
        self.assertEqual(argv[4], "--vars")
        self.assertEqual(
            json.loads(argv[5]), {"batch_id": BATCH, "pipeline": "policycenter", "full_refresh_tables": ["a"]}
        )

    def test_request_vars_cannot_override_batch_id(self):
        argv = build_dbt_argv(body(vars={"batch_id": "evil"}, select=None))
        self.assertNotIn("--select", argv)
        self.assertEqual(json.loads(argv[-1])["batch_id"], BATCH)


class RegistryTest(unittest.TestCase):
    def setUp(self):
        ids = iter("run-%d" % i for i in range(1, 100))
        self.reg = RunRegistry(clock=lambda: "2026-11-27T02:00:00.000Z", new_id=lambda: next(ids))
        self.created = []
        self.reg.on_created = self.created.append

    def test_create_is_202_and_repeat_is_200_with_same_run(self):
        self.assertEqual(self.reg.create(body()), (202, {"runId": "run-1", "status": "QUEUED"}))
        self.assertEqual(self.reg.create(body()), (200, {"runId": "run-1", "status": "QUEUED"}))
        self.assertEqual(len(self.created), 1, "exactly one run per batch")

    def test_repeat_returns_current_status(self):
        self.reg.create(body())
        self.reg.mark_running("run-1")
        self.reg.mark_finished("run-1", True)
        self.assertEqual(self.reg.create(body()), (200, {"runId": "run-1", "status": "SUCCEEDED"}))

    def test_same_key_different_parameters_is_409(self):
        self.reg.create(body())
        status, payload = self.reg.create(body(select="other"))
        self.assertEqual(status, 409)
        self.assertEqual(payload["runId"], "run-1")

    def test_new_attempt_while_active_is_409_and_after_failure_is_202(self):
        self.reg.create(body())
        self.assertEqual(self.reg.create(body(attempt=2))[0], 409)
        self.reg.mark_running("run-1")
        self.reg.mark_finished("run-1", False, "boom")
        self.assertEqual(self.reg.create(body(attempt=2)), (202, {"runId": "run-2", "status": "QUEUED"}))
        self.assertEqual(len(self.created), 2)

    def test_get(self):
        self.reg.create(body())
        status, run = self.reg.get("run-1")
        self.assertEqual(status, 200)
        self.assertEqual(run["batchId"], BATCH)
        self.assertEqual(run["status"], "QUEUED")
        self.assertIsNone(run["startedAt"])
        self.assertNotIn("error", run)
        self.assertEqual(self.reg.get("run-404")[0], 404)
        self.assertEqual(self.reg.get("../etc")[0], 404)

    def test_concurrent_creates_make_one_run(self):
        # A slow id factory widens the check-then-insert window, so a missing lock shows.
        import time

        ids = iter("run-%d" % i for i in range(1, 100))

        def slow_id():
            time.sleep(0.02)
            return next(ids)

        self.reg = RunRegistry(new_id=slow_id)
        self.created = []
        self.reg.on_created = self.created.append
        results = []
        barrier = threading.Barrier(16)

        def go():
            barrier.wait()
            results.append(self.reg.create(body()))

        threads = [threading.Thread(target=go) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(s for s, _ in results), [200] * 15 + [202])
        self.assertEqual({b["runId"] for _, b in results}, {"run-1"})
        self.assertEqual(len(self.created), 1)


class WorkerTest(unittest.TestCase):
    def run_with(self, runner):
        reg = RunRegistry()
        worker = Worker(reg, runner).start()
        try:
            status, created = reg.create(body())
            self.assertEqual(status, 202)
            worker.drain()
            return reg.get(created["runId"])[1]
        finally:
            worker.stop()

    def test_lifecycle_success(self):
        seen = []

        def runner(run):
            seen.append(run["status"])
            return True, None

        run = self.run_with(runner)
        self.assertEqual(seen, ["RUNNING"])
        self.assertEqual(run["status"], "SUCCEEDED")
        self.assertTrue(run["startedAt"] and run["finishedAt"])
        self.assertNotIn("error", run)

    def test_failure_carries_the_message(self):
        run = self.run_with(lambda run: (False, "Database Error in model dim_policy"))
        self.assertEqual(run["status"], "FAILED")
        self.assertEqual(run["error"], "Database Error in model dim_policy")

    def test_runner_exception_fails_the_run_not_the_worker(self):
        def boom(run):
            raise RuntimeError("bug")

        run = self.run_with(boom)
        self.assertEqual(run["status"], "FAILED")
        self.assertIn("runner error", run["error"])


class SubprocessRunnerTest(unittest.TestCase):
    """Runs a stand-in 'dbt' (the Python interpreter with -c) to check exit-code handling."""

    def test_exit_codes_and_timeout(self):
        ok = subprocess_runner(dbt_bin=sys.executable)
        # argv = [python, "build", ...] -> python tries to open a file named "build": exit 2
        result = ok(body())
        self.assertFalse(result[0])
        self.assertIn("exited 2", result[1])

    def test_missing_binary(self):
        ok, message = subprocess_runner(dbt_bin="/nonexistent/dbt")(body())
        self.assertFalse(ok)
        self.assertIn("could not start dbt", message)

    def test_success_and_timeout(self):
        original = runs.build_dbt_argv
        try:
            runs.build_dbt_argv = lambda run, dbt_bin: [sys.executable, "-c", "import sys; sys.exit(0)"]
            self.assertEqual(subprocess_runner()(body()), (True, None))
            runs.build_dbt_argv = lambda run, dbt_bin: [sys.executable, "-c", "import time; time.sleep(5)"]
            ok, message = subprocess_runner(timeout_seconds=0.2)(body())
            self.assertFalse(ok)
            self.assertIn("did not finish", message)
        finally:
            runs.build_dbt_argv = original


class NoFlaskTest(unittest.TestCase):
    def test_runs_module_does_not_import_flask(self):
        out = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import runs; print('flask' in sys.modules)"],
            capture_output=True,
            text=True,
            check=True,
        )
        self.assertEqual(out.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main()
