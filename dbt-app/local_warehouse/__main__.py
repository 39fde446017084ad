"""CLI: ``python -m local_warehouse start|seed|set-fence|fence|builds`` (run from dbt-app/)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from . import Warehouse, WarehouseError, sample, serve


def _port(value: str | None) -> int:
    raw = value or os.environ.get("LOCAL_WAREHOUSE_PORT")
    if not raw or not raw.isdigit():
        raise SystemExit(f"--port (or LOCAL_WAREHOUSE_PORT) must be the fakesnow server's port, got {raw!r}")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_warehouse", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("LOCAL_WAREHOUSE_HOST", "127.0.0.1"))
    parser.add_argument("--port", help="server port (default: $LOCAL_WAREHOUSE_PORT)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start", help="run the fakesnow server in the foreground until Ctrl-C; create schemas and seed")
    sub.add_parser("serve-jsonl", help="run the server (schemas, no seed) and answer JSON-line commands on stdin (local/warehouse.ts)")
    seed = sub.add_parser("seed", help="create BASE/CONTROL and load the CDA sample through the Glue MERGE")
    seed.add_argument("--stamp", default="20251127T030000Z", help="batch stamp yyyyMMddTHHmmssZ")
    seed.add_argument("--pipeline", action="append", choices=sample.PIPELINES, help="default: all")
    fence = sub.add_parser("set-fence", help="point CONTROL.FENCE at a region and epoch")
    fence.add_argument("region")
    fence.add_argument("epoch", type=int)
    sub.add_parser("fence", help="print the fence row")
    builds = sub.add_parser("builds", help="print CONTROL.BUILDS rows (JSON lines)")
    builds.add_argument("--pipeline")
    builds.add_argument("--batch-id")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "start":
            with serve(port=int(args.port) if args.port else None, host=args.host) as port:
                wh = Warehouse(port, args.host)
                wh.seed()
                print(f"local warehouse on {args.host}:{port}; export LOCAL_WAREHOUSE_PORT={port}", flush=True)
                stop = threading.Event()
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                stop.wait()
            return 0
        if args.cmd == "serve-jsonl":
            return _serve_jsonl(args.host)
        wh = Warehouse(_port(args.port), args.host)
        if args.cmd == "seed":
            print(json.dumps(wh.seed(args.stamp, args.pipeline or sample.PIPELINES)))
        elif args.cmd == "set-fence":
            wh.set_fence(args.region, args.epoch)
            print(json.dumps({"region": args.region, "epoch": args.epoch}))
        elif args.cmd == "fence":
            print(json.dumps(wh.fence()))
        elif args.cmd == "builds":
            for row in wh.builds(pipeline=args.pipeline, batch_id=args.batch_id):
                print(json.dumps(row, default=str))
    except WarehouseError as exc:
        raise SystemExit(f"error: {exc}") from None
    return 0


def _serve_jsonl(host: str) -> int:
    """One process for the scenarios: the server, plus {"id", "op", ...} commands on stdin answered as
    {"id", "result"} or {"id", "error"} on stdout (ops: set_fence, fence, builds). EOF stops it."""
    import os
    import sys

    # The answers get stdout to themselves: anything else that writes to stdout in this process
    # (the server thread's libraries, at the Python or the C level) goes to stderr instead, so it
    # cannot interleave with an answer line (seen as "{...}garbage" under load).
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(message: dict) -> None:
        answers.write(json.dumps(message, default=str) + "\n")
        answers.flush()

    with serve(host=host) as port:
        wh = Warehouse(port, host)
        wh.setup()
        answer({"port": port})
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            try:
                if cmd["op"] == "set_fence":
                    wh.set_fence(cmd["region"], int(cmd["epoch"]), allow_backwards=bool(cmd.get("allowBackwards")))
                    result = wh.fence()
                elif cmd["op"] == "fence":
                    result = wh.fence()
                elif cmd["op"] == "builds":
                    result = wh.builds(pipeline=cmd.get("pipeline"), batch_id=cmd.get("batchId"))
                else:
                    raise WarehouseError(f"unknown op {cmd['op']!r}; use set_fence, fence or builds")
                answer({"id": cmd.get("id"), "result": result})
            except Exception as exc:  # answered, not fatal: the caller raises it
                answer({"id": cmd.get("id"), "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
