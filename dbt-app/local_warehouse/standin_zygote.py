"""A fork server for the dbt stand-in (the soak only; NOT in the image).

Importing snowflake.connector costs over a CPU second per stand-in process, most of a fast build on a
busy 2-core machine. This process imports it once and listens on a unix socket; the app's DBT_BIN
is standin_client.py, which sends its argv and environment and relays the child's output and exit
code. Each build is a fork, so concurrent builds stay independent processes. The child watches the
client's connection: when the client dies (its pod was SIGKILLed, or the app killed dbt), the child
stops at once without finishing its CONTROL.BUILDS row, as a killed dbt would.

    python -m local_warehouse.standin_zygote <socket-path>
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys


def _serve_one(conn: socket.socket) -> None:
    """In the child: read the request, run the stand-in with its output on the connection."""
    from local_warehouse import dbt_standin

    request = json.loads(conn.makefile("r", encoding="utf-8").readline())
    fd = conn.fileno()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.clear()
    os.environ.update(request["env"])
    if request.get("cwd"):
        os.chdir(request["cwd"])

    def client_alive() -> bool:
        readable, _, _ = select.select([conn], [], [], 0)
        return not readable or conn.recv(1, socket.MSG_PEEK) != b""

    code = 2
    try:
        code = dbt_standin.main(request["argv"], alive=client_alive)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report anything as a failed build
        import traceback

        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.write(1, f"\n\x00RC {code}\n".encode())
    except OSError:
        pass
    os._exit(0)


def main(path: str) -> None:
    import snowflake.connector  # noqa: F401 - the expensive import, done once before any fork

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            _serve_one(conn)
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
