"""The soak's dbt stand-in does dbt's part of the exactly-once contract at the sink: run as the soak
runs it (standin_client.py -> the standin_zygote.py fork server -> dbt_standin.main) against the
local warehouse. A batch CONTROL.BUILDS already holds SUCCEEDED is refused (ALREADY_BUILT) and
nothing is written, unless the var rebuild is true (soak seeds 1009, 1016, 1018)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import HERE, Warehouse, serve

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

REGION, EPOCH = "us-east-1", 7
BATCH = "claimcenter-20261203T000000Z"


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    with serve() as port:
        w = Warehouse(port)
        w.setup()
        w.execute("DELETE FROM CONTROL.FENCE")
        w.execute("DELETE FROM CONTROL.BUILDS")
        w.set_fence(REGION, EPOCH, allow_backwards=True)
        yield w
        w.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project dir holding the fork server's socket and a zero-length build (standin.json)."""
    directory = tmp_path_factory.mktemp("standin-project")
    (directory / "standin.json").write_text(json.dumps({"seconds": 0}), encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-m", "local_warehouse.standin_zygote", str(directory / "standin.sock")],
        cwd=HERE.parent,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield directory
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)


def build(wh: Warehouse, project: Path, attempt: int, **extra: Any) -> subprocess.CompletedProcess[str]:
    variables = {"batch_id": BATCH, "pipeline": "claimcenter", "attempt": attempt, "run_id": f"{BATCH}.{attempt}", "fence_region": REGION, "fence_epoch": EPOCH, **extra}
    env = {
        **os.environ,
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": "snow",
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(wh.port),
        "SNOWFLAKE_PROTOCOL": "http",
        "SNOWFLAKE_DATABASE": wh.database,
    }
    argv = [sys.executable, str(HERE / "standin_client.py"), "build", "--project-dir", str(project), "--vars", json.dumps(variables)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def test_a_second_build_of_a_built_batch_is_refused_and_writes_nothing_unless_a_rebuild(wh: Warehouse, project: Path) -> None:
    first = build(wh, project, 1)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [(b["attempt"], b["status"]) for b in wh.builds(batch_id=BATCH)] == [(1, "SUCCEEDED")]

    again = build(wh, project, 2)
    assert again.returncode == 1
    assert f"ALREADY_BUILT: claimcenter batch {BATCH} was built by run {BATCH}.1 (region {REGION}, epoch {EPOCH})" in again.stdout
    assert [b["attempt"] for b in wh.builds(batch_id=BATCH)] == [1], "a refused build writes no build row"

    # A false-ish rebuild var is no rebuild; a deliberate one builds again.
    assert "ALREADY_BUILT" in build(wh, project, 3, rebuild="no").stdout
    forced = build(wh, project, 4, rebuild=True)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert [(b["attempt"], b["status"]) for b in wh.builds(batch_id=BATCH)] == [(1, "SUCCEEDED"), (4, "SUCCEEDED")]


def test_a_failed_build_does_not_block_the_next_attempt(wh: Warehouse, project: Path) -> None:
    batch = "claimcenter-20261204T000000Z"
    (project / "standin.json").write_text(json.dumps({"seconds": 0, "batches": {batch: {"fail": True}}}), encoding="utf-8")
    try:
        failed = build(wh, project, 1, batch_id=batch, run_id=f"{batch}.1")
        assert failed.returncode == 1 and "ALREADY_BUILT" not in failed.stdout
        (project / "standin.json").write_text(json.dumps({"seconds": 0}), encoding="utf-8")
        retried = build(wh, project, 2, batch_id=batch, run_id=f"{batch}.2")
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert [(b["attempt"], b["status"]) for b in wh.builds(batch_id=batch)] == [(1, "FAILED"), (2, "SUCCEEDED")]
    finally:
        (project / "standin.json").write_text(json.dumps({"seconds": 0}), encoding="utf-8")
