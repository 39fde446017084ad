"""A dbt CLI that imports once and forks per invocation (tests and the twin only).

Importing dbt costs several CPU seconds per ``dbt`` process, most of a small build on a busy
2-core machine. This process imports ``dbt.cli.main`` once, then for every request read from
stdin (one JSON object a line: ``args``, ``env``, ``log``) forks a child that runs exactly what
the ``dbt`` console script runs (``cli()``, which exits with dbt's code), with stdout/stderr sent
to ``log``; the exit code lands in ``log + ".rc"``. Children are independent processes, so
concurrent invocations behave as concurrent ``dbt`` commands do. Forking is safe here: this
process never starts a thread.
"""

from __future__ import annotations

import json
import os
import sys


def _child(request: dict) -> int:
    from dbt.cli.main import cli

    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(request.get("env", {}))
    sys.argv = ["dbt", *request["args"]]
    try:
        cli()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report anything as a failed invocation
        import traceback

        traceback.print_exc()
        return 2


def main() -> None:
    import dbt.cli.main  # noqa: F401 - the expensive import, done once before any fork

    children: set[int] = set()
    for line in sys.stdin:
        request = json.loads(line)
        _reap(children, block=False)
        pid = os.fork()
        if pid:
            children.add(pid)
        else:
            code = 2
            try:
                sys.stdin.close()
                code = _child(request)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                with open(request["log"] + ".rc.tmp", "w") as f:
                    f.write(str(code))
                os.rename(request["log"] + ".rc.tmp", request["log"] + ".rc")
                os._exit(code)
    _reap(children, block=True)  # stdin closed: wait for the last invocations


def _reap(children: set[int], *, block: bool) -> None:
    # Reaped children's CPU time is added to this process's, so `time` on a test run counts dbt.
    for pid in list(children):
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done:
            children.discard(pid)


if __name__ == "__main__":
    main()
