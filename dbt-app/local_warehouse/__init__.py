"""Local warehouse: a fakesnow server standing in for the shared Snowflake account.

One fakesnow server process holds the whole local warehouse (DuckDB in memory behind
Snowflake's HTTP protocol); dbt runs as its own processes with the real dbt-snowflake adapter
(profiles.yml here, target ``local``). The base layer is loaded with the SQL the Glue job
itself generates (glue/cda_logic.py ``stage_statements`` + ``merge_statements``).

Python API (tests, the twin)::

    with serve() as port:                     # or `python -m local_warehouse start`
        wh = Warehouse(port)
        wh.setup(); wh.seed(); wh.set_fence("us-east-1", 1)
        Dbt(port).run("build", "--select", "tag:policycenter", vars={...})
        wh.builds(batch_id=...)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROJECT_DIR = REPO / "dbt-app" / "dbt_project"
GLUE_DIR = REPO / "glue"
if str(GLUE_DIR) not in sys.path:  # the reference Glue logic is a plain module there
    sys.path.insert(0, str(GLUE_DIR))

import cda_logic  # noqa: E402  (needs GLUE_DIR on sys.path)

from . import sample  # noqa: E402

DATABASE = "ETL"
BASE_SCHEMA = cda_logic.SNOWFLAKE_SCHEMA
CONTROL_SCHEMA = "CONTROL"
SEMANTIC_SCHEMA = "SEMANTIC"

# The control tables dbt reads (FENCE) and writes (BUILDS); the same DDL runs on Snowflake.
CONTROL_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.FENCE (REGION VARCHAR NOT NULL, EPOCH NUMBER(19,0) NOT NULL, CHANGED_AT TIMESTAMP_NTZ NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {CONTROL_SCHEMA}.BUILDS (INVOCATION_ID VARCHAR NOT NULL, COMMAND VARCHAR NOT NULL, "
    "PIPELINE VARCHAR NOT NULL, BATCH_ID VARCHAR NOT NULL, ATTEMPT NUMBER(10,0) NOT NULL, RUN_ID VARCHAR NOT NULL, "
    "REGION VARCHAR NOT NULL, EPOCH NUMBER(19,0) NOT NULL, STARTED_AT TIMESTAMP_NTZ NOT NULL, FINISHED_AT TIMESTAMP_NTZ, "
    "STATUS VARCHAR NOT NULL)",
)


class WarehouseError(ValueError):
    """Bad input to the local warehouse: the message names the value and the fix."""


_FAKESNOW_SERVER: Any = None


@contextlib.contextmanager
def serve(port: int | None = None, host: str = "127.0.0.1") -> Iterator[int]:
    """Run a fakesnow server in a thread of this process; yields its port. All sessions share
    one in-memory database, which lives as long as the server."""
    global _FAKESNOW_SERVER
    if _FAKESNOW_SERVER is None:
        import fakesnow

        # fakesnow.server() imports the submodule fakesnow.server, which then shadows the function
        # on the package: a second serve() in one process (two test modules) would call a module.
        _FAKESNOW_SERVER = fakesnow.server
    import fakesnow.server as server_module
    from fakesnow.instance import FakeSnow

    # Sessions of every server in a process share the module's FakeSnow (one DuckDB): start each
    # served warehouse empty, as its docstring says.
    server_module.shared_fs = FakeSnow()
    with _FAKESNOW_SERVER(port=port, host=host) as kwargs:
        yield int(kwargs["port"])


@dataclass
class Warehouse:
    """A client of the local warehouse (the fakesnow server on ``host``:``port``)."""

    port: int
    host: str = "127.0.0.1"
    database: str = DATABASE
    _conn: Any = field(default=None, init=False, repr=False)

    def connect(self) -> Any:
        if self._conn is None:
            import snowflake.connector

            self._conn = snowflake.connector.connect(
                user="fake", password="snow", account="fakesnow", host=self.host, port=self.port, protocol="http",
            )
            self._conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            self._conn.cursor().execute(f"USE DATABASE {self.database}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.connect().cursor()
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []

    def setup(self) -> None:
        """Create the base-layer and control schemas (idempotent)."""
        # SEMANTIC too: concurrent builds would otherwise race on `create schema`.
        for schema in (BASE_SCHEMA, SEMANTIC_SCHEMA):
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for sql in CONTROL_DDL:
            self.execute(sql)

    # ---- base layer, loaded the way glue/lake_to_snowflake.py loads it

    def load_folders(self, pipeline: str, batch_id: str, table: str, columns: Sequence[tuple[str, str]],
                     folders: Mapping[int, Sequence[Mapping[str, Any]]], fence: tuple[str, int] | None = None) -> int:
        """Stage one batch of CDA folders and MERGE it into BASE.<TABLE> with the Glue job's own SQL
        (preactions/postactions); returns the rows staged. Re-loading a batch adds nothing.
        With ``fence`` (region, epoch), the job's fence guard runs first in both lists, as in
        glue/lake_to_snowflake.py: a stale fence raises before anything is staged or merged."""
        cda_logic.validate_batch_id(batch_id, pipeline)
        cda_logic.check_reserved_columns([name for name, _ in columns])
        staged = list(columns) + [(cda_logic.CDA_TIMESTAMP_COLUMN, "bigint"), (cda_logic.BATCH_ID_COLUMN, "string")]
        names = [name for name, _ in staged]
        rows = []
        for ts, records in sorted(folders.items()):
            for r in records:
                unknown = set(r) - {name for name, _ in columns}
                if unknown:
                    raise WarehouseError(f"{table}: record {r.get('id')} has columns {sorted(unknown)} not in the table's columns")
                rows.append(tuple(r.get(name) for name in names[:-2]) + (ts, batch_id))
        guard = [cda_logic.fence_guard_sql(*fence)] if fence is not None else []
        for sql in [*guard, *cda_logic.stage_statements(table, batch_id, staged)]:
            self.execute(sql)
        stage = f"{BASE_SCHEMA}.{cda_logic.stage_table(table, batch_id)}"
        if rows:
            cols = ", ".join(cda_logic.quote_ident(n) for n in names)
            marks = ", ".join(["%s"] * len(names))
            self.connect().cursor().executemany(f"INSERT INTO {stage} ({cols}) VALUES ({marks})", rows)
        for sql in [*guard, *cda_logic.merge_statements(table, batch_id, staged)]:
            self.execute(sql)
        return len(rows)

    def seed(self, stamp: str = "20251127T030000Z", pipelines: Sequence[str] = sample.PIPELINES) -> dict[str, int]:
        """Load the sample (sample.py) for ``pipelines`` as batch ``<pipeline>-<stamp>``; returns
        rows staged per table. The last folder of every table is delivered twice, as a retried
        Glue run would; the MERGE keeps one copy."""
        self.setup()
        loaded: dict[str, int] = {}
        for pipeline in pipelines:
            batch_id = f"{pipeline}-{stamp}"
            for t in sample.tables_of(pipeline):
                loaded[t.name] = self.load_folders(pipeline, batch_id, t.name, t.columns, t.folders)
                last = max(t.folders)
                self.load_folders(pipeline, batch_id, t.name, t.columns, {last: t.folders[last]})
        return loaded

    # ---- fence and build log

    def fence(self) -> tuple[str, int] | None:
        rows = self.execute(f"SELECT REGION, EPOCH FROM {CONTROL_SCHEMA}.FENCE")
        if len(rows) > 1:
            raise WarehouseError(f"{CONTROL_SCHEMA}.FENCE holds {len(rows)} rows; it must hold one")
        return (rows[0][0], int(rows[0][1])) if rows else None

    def set_fence(self, region: str, epoch: int, *, allow_backwards: bool = False) -> None:
        """Point the fence at ``region`` with ``epoch``. Epochs only move forward (a failover bumps
        it), unless ``allow_backwards`` (tests that stage a stale region)."""
        if not isinstance(region, str) or not region.strip():
            raise WarehouseError(f"region must be a region name such as us-east-1, got {region!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise WarehouseError(f"epoch must be a non-negative integer, got {epoch!r}")
        current = self.fence()
        if current and epoch <= current[1] and not allow_backwards and (region, epoch) != current:
            raise WarehouseError(
                f"epoch {epoch} does not move the fence forward (it is {current[0]} epoch {current[1]}); use epoch {current[1] + 1}"
            )
        cur = self.connect().cursor()
        cur.execute("BEGIN")
        try:
            cur.execute(f"DELETE FROM {CONTROL_SCHEMA}.FENCE")
            cur.execute(f"INSERT INTO {CONTROL_SCHEMA}.FENCE (REGION, EPOCH, CHANGED_AT) VALUES (%s, %s, CURRENT_TIMESTAMP())", (region, epoch))
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise

    def builds(self, *, pipeline: str | None = None, batch_id: str | None = None) -> list[dict[str, Any]]:
        """CONTROL.BUILDS rows, oldest first, optionally for one pipeline / batch."""
        where, params = [], []
        for col, value in (("PIPELINE", pipeline), ("BATCH_ID", batch_id)):
            if value is not None:
                where.append(f"{col} = %s")
                params.append(value)
        sql = (f"SELECT INVOCATION_ID, COMMAND, PIPELINE, BATCH_ID, ATTEMPT, RUN_ID, REGION, EPOCH, STARTED_AT, FINISHED_AT, STATUS "
               f"FROM {CONTROL_SCHEMA}.BUILDS" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY STARTED_AT")
        keys = ("invocation_id", "command", "pipeline", "batch_id", "attempt", "run_id", "region", "epoch", "started_at", "finished_at", "status")
        return [dict(zip(keys, row, strict=True)) for row in self.execute(sql, params)]

    def count(self, relation: str) -> int:
        """Rows in ``relation`` (``SCHEMA.TABLE``); -1 when it does not exist."""
        schema, _, name = relation.upper().partition(".")
        found = self.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s", (schema, name)
        )
        if not found or found[0][0] == 0:
            return -1
        return int(self.execute(f"SELECT COUNT(*) FROM {relation}")[0][0])


@dataclass(frozen=True)
class DbtResult:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Dbt:
    """Runs the real dbt CLI (the one next to this interpreter) on the project, target ``local``."""

    port: int
    host: str = "127.0.0.1"
    target_path: Path | None = None
    log_path: Path | None = None

    def env_overrides(self) -> dict[str, str]:
        env = {"LOCAL_WAREHOUSE_PORT": str(self.port), "LOCAL_WAREHOUSE_HOST": self.host, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        if self.log_path:
            env["DBT_LOG_PATH"] = str(self.log_path)
        if self.target_path:
            env["DBT_TARGET_PATH"] = str(self.target_path)
        return env

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.env_overrides()}

    def command(self, *args: str, vars: Mapping[str, Any] | None = None) -> list[str]:
        cmd = [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(HERE),
               "--target", "local"]
        if vars is not None:
            cmd += ["--vars", json.dumps(dict(vars))]
        return cmd

    def start(self, *args: str, vars: Mapping[str, Any] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args, vars=vars), env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run(self, *args: str, vars: Mapping[str, Any] | None = None, timeout: float = 180) -> DbtResult:
        proc = self.start(*args, vars=vars)
        out, _ = proc.communicate(timeout=timeout)
        return DbtResult(proc.returncode, out)


class ZygoteRun:
    """One invocation started by ``DbtZygote.start``; ``wait()`` returns its ``DbtResult``."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def wait(self, timeout: float = 300) -> DbtResult:
        import time

        rc = self.log.with_name(self.log.name + ".rc")
        deadline = time.monotonic() + timeout
        while not rc.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"dbt did not finish within {timeout} s; its output so far is in {self.log}")
            time.sleep(0.05)
        return DbtResult(int(rc.read_text()), self.log.read_text())


class DbtZygote:
    """Runs dbt invocations as forks of one process that imported dbt once (dbt_zygote.py).

    The same ``cli()`` the ``dbt`` executable runs, minus several CPU seconds of imports per
    invocation. Use as a context manager; ``start`` may be called concurrently from one thread."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._proc: subprocess.Popen[str] | None = None
        self._n = 0

    def __enter__(self) -> DbtZygote:
        self._proc = subprocess.Popen([sys.executable, "-m", "local_warehouse.dbt_zygote"], cwd=HERE.parent, stdin=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.stdin.close()  # type: ignore[union-attr]
            self._proc.wait(timeout=30)
            self._proc = None

    def start(self, dbt: Dbt, *args: str, vars: Mapping[str, Any] | None = None) -> ZygoteRun:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError("the dbt zygote is not running; use DbtZygote as a context manager")
        self._n += 1
        log = self.workdir / f"dbt-{self._n}.out"
        request = {"args": dbt.command(*args, vars=vars)[1:], "env": dbt.env_overrides(), "log": str(log)}
        self._proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        self._proc.stdin.flush()  # type: ignore[union-attr]
        return ZygoteRun(log)
