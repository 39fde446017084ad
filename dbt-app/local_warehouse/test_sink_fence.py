"""The Glue load's sink-side fence (glue/cda_logic.py ``fence_guard_sql``) against the local
warehouse: the exact statement the job puts in its preactions and postactions, run by the fakesnow
server through the Snowflake connector, as the Glue connector runs it in its session."""

from __future__ import annotations

from collections.abc import Iterator

import cda_logic
import pytest

from . import Warehouse, sample, serve

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

BATCH = "policycenter-20261127T020000Z"


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    with serve() as port:
        w = Warehouse(port)
        w.setup()
        yield w
        w.close()


def guard_error(wh: Warehouse, region: str, epoch: int) -> cda_logic.StaleFenceError | None:
    try:
        rows = wh.execute(cda_logic.fence_guard_sql(region, epoch))
    except Exception as exc:  # the connector's error, as the Glue connector would surface it
        err = cda_logic.stale_fence_error(exc, region, epoch)
        assert err is not None, f"not a fence error: {exc}"
        return err
    assert rows == [(1,)]
    return None


def test_guard_passes_only_for_the_exact_region_and_epoch(wh: Warehouse) -> None:
    wh.execute("DELETE FROM CONTROL.FENCE")
    err = guard_error(wh, "us-east-1", 3)
    assert err is not None and "holds 0 row(s), region none epoch none" in str(err)

    wh.set_fence("us-east-1", 3)
    assert guard_error(wh, "us-east-1", 3) is None
    for region, epoch in (("us-west-1", 3), ("us-east-1", 2), ("us-east-1", 4)):
        err = guard_error(wh, region, epoch)
        assert err is not None
        assert str(err).startswith(f"STALE_FENCE: this load carries region {region} epoch {epoch}, CONTROL.FENCE holds 1 row(s), region us-east-1 epoch 3")

    wh.execute("INSERT INTO CONTROL.FENCE (REGION, EPOCH, CHANGED_AT) VALUES ('us-east-1', 3, CURRENT_TIMESTAMP())")
    err = guard_error(wh, "us-east-1", 3)
    assert err is not None and "holds 2 row(s)" in str(err)
    wh.execute("DELETE FROM CONTROL.FENCE")


def test_a_stale_load_stages_and_merges_nothing(wh: Warehouse) -> None:
    t = sample.tables_of("policycenter")[0]
    target = cda_logic.base_table(t.name)
    wh.set_fence("us-west-1", 5, allow_backwards=True)
    before = wh.count(target)
    with pytest.raises(Exception, match="STALE_FENCE: this load carries region us-east-1 epoch 4"):
        wh.load_folders("policycenter", BATCH, t.name, t.columns, t.folders, fence=("us-east-1", 4))
    assert wh.count(target) == before  # -1: not even created
    stage = f"{cda_logic.SNOWFLAKE_SCHEMA}.{cda_logic.stage_table(t.name, BATCH)}"
    assert wh.count(stage) == -1

    staged = wh.load_folders("policycenter", BATCH, t.name, t.columns, t.folders, fence=("us-west-1", 5))
    assert staged > 0
    assert wh.count(target) == staged
    # The fence moves (failover) between two loads: the old holder's retry merges nothing more.
    wh.set_fence("us-east-1", 6)
    with pytest.raises(Exception, match="STALE_FENCE"):
        wh.load_folders("policycenter", BATCH, t.name, t.columns, t.folders, fence=("us-west-1", 5))
    assert wh.count(target) == staged
