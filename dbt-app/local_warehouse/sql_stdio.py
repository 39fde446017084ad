"""Run SQL from another language against a fresh local warehouse: one JSON request per stdin line,
``{"sql": "... ? ...", "bindings": [..]}``, one JSON answer per stdout line, ``{"rows": [[str..]..]}``
or ``{"error": "..."}``. Bindings are sent as the Snowflake connector's server-side ``qmark``
bindings, as the SQL API binds them. Used by tests/warehouse-fence.test.ts (the Node fence writer's
statements, verbatim). Starts its own fakesnow server with the CONTROL tables; prints ``ready``."""

from __future__ import annotations

import json
import sys

from . import CONTROL_DDL, DATABASE, serve


def main() -> int:
    import snowflake.connector

    with serve() as port:
        conn = snowflake.connector.connect(
            user="fake", password="snow", account="fakesnow", host="127.0.0.1", port=port, protocol="http", paramstyle="qmark",
        )
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        conn.cursor().execute(f"USE DATABASE {DATABASE}")
        for sql in CONTROL_DDL:
            conn.cursor().execute(sql)
        print(json.dumps({"ready": port}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            try:
                cur = conn.cursor()
                cur.execute(request["sql"], request.get("bindings") or None)
                rows = cur.fetchall() if cur.description else []
                answer = {"rows": [[None if v is None else str(v) for v in row] for row in rows], "rowcount": cur.rowcount}
            except Exception as exc:  # reported to the caller, which decides
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
