#!/usr/bin/env python3
"""DBT_BIN for the soak: hands `dbt build ...` to the stand-in fork server (standin_zygote.py) that
listens on <project-dir>/standin.sock, relays its output and exits with its code. Standard library
only, so it starts in milliseconds. Killing this process stops the build (the child watches us)."""

from __future__ import annotations

import json
import os
import socket
import sys


def main(argv: list[str]) -> int:
    project_dir = argv[argv.index("--project-dir") + 1]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.path.join(project_dir, "standin.sock"))
    sock.sendall((json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}) + "\n").encode())
    code = 2
    for line in sock.makefile("r", encoding="utf-8", errors="replace"):
        if line.startswith("\x00RC "):
            code = int(line[4:])
            break
        sys.stdout.write(line)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
