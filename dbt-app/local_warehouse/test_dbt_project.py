"""The dbt project, run by the real dbt CLI (dbt-snowflake adapter) against the local warehouse.

One fakesnow server and one seeded warehouse for the module. dbt invocations dominate the time,
so they run as forks of one pre-imported dbt (DbtZygote; the plain `dbt` executable runs in
tests/test_app_real_dbt.py, started by the app's worker) and independent ones run concurrently, which also shows concurrent
builds through the one warehouse process stay correct.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from . import HERE, Dbt, DbtResult, DbtZygote, Warehouse, WarehouseError, sample, serve

# fakesnow's own performance hint, not about this project.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

ACTIVE, STANDBY = "us-east-1", "us-west-1"
EPOCH = 3
MARTS = {
    "policycenter": {"dim_account": "pc_account", "dim_policy": "pc_policy", "fct_policy_period": "pc_policyperiod"},
    "claimcenter": {"fct_claim": "cc_claim", "fct_claim_transaction": "cc_transaction"},
    "billingcenter": {"dim_billing_account": "bc_account", "fct_invoice": "bc_invoice", "fct_payment": "bc_payment"},
}
ALL_MARTS = [m for marts in MARTS.values() for m in marts]


def build_vars(pipeline: str, batch_id: str, region: str | None = ACTIVE, epoch: Any = EPOCH, **extra: Any) -> dict[str, Any]:
    out = {"batch_id": batch_id, "pipeline": pipeline, "attempt": 1, "run_id": f"run-{batch_id}", **extra}
    if region is not None:
        out["fence_region"] = region
    if epoch is not None:
        out["fence_epoch"] = epoch
    return out


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    with serve() as port:
        w = Warehouse(port)
        w.seed()
        w.set_fence(ACTIVE, EPOCH)
        yield w
        w.close()


@pytest.fixture(scope="module")
def dbt_runs(wh: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """run_all({name: (args, vars)}) -> {name: (DbtResult, target dir)}, all started at once."""

    with DbtZygote(tmp_path_factory.mktemp("dbt-out")) as zygote:

        def run_all(specs: Mapping[str, tuple[tuple[str, ...], Mapping[str, Any] | None]]) -> dict[str, tuple[DbtResult, Path]]:
            started = {}
            for name, (args, vars) in specs.items():
                target = tmp_path_factory.mktemp(f"target-{name}")
                dbt = Dbt(wh.port, target_path=target, log_path=target / "logs")
                started[name] = (zygote.start(dbt, *args, "--threads", "4", vars=vars), target)
            return {name: (run.wait(), target) for name, (run, target) in started.items()}

        yield run_all


def mart_counts(wh: Warehouse) -> dict[str, int]:
    return {m: wh.count(f"SEMANTIC.{m}") for m in ALL_MARTS}


def executed(target: Path, resource: str) -> dict[str, str]:
    """{node name: status} of run_results.json for one resource type (model, test)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["status"] for r in results if r["unique_id"].startswith(resource + ".")}


def tagged_models(target: Path, tag: str) -> set[str]:
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    return {n["name"] for n in nodes if n["resource_type"] == "model" and tag in n["tags"]}


# ---- the warehouse tooling itself (no dbt)


def test_seed_goes_through_the_glue_merge_and_a_redelivered_folder_adds_nothing(wh: Warehouse) -> None:
    for t in sample.TABLES:
        assert wh.count(f"BASE.{t.name.upper()}") == sample.change_records(t.name), t.name
    t = sample.table("pc_policy")
    last = max(t.folders)
    again = wh.load_folders("policycenter", "policycenter-20251127T030000Z", t.name, t.columns, {last: t.folders[last]})
    assert again == len(t.folders[last])
    assert wh.count("BASE.PC_POLICY") == sample.change_records("pc_policy")
    assert wh.count("BASE.PC_POLICY__STG_20251127T030000Z") == -1  # the Glue postactions dropped the stage


def test_fence_only_moves_forward_and_the_cli_reads_it(wh: Warehouse) -> None:
    with pytest.raises(WarehouseError, match=r"does not move the fence forward .* use epoch 4"):
        wh.set_fence(STANDBY, EPOCH - 1)
    with pytest.raises(WarehouseError, match="non-negative integer"):
        wh.set_fence(STANDBY, "4")  # type: ignore[arg-type]
    assert wh.fence() == (ACTIVE, EPOCH)
    cli = subprocess.run([sys.executable, "-m", "local_warehouse", "--port", str(wh.port), "fence"],
                         cwd=HERE.parent, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == [ACTIVE, EPOCH]


# ---- dbt


def test_each_pipeline_tag_builds_exactly_its_models_and_their_tests_pass(wh: Warehouse, dbt_runs) -> None:
    specs = {p: (("build", "--select", f"tag:{p}"), build_vars(p, f"{p}-20251127T030000Z")) for p in MARTS}
    # With no vars at all: compile (and parse) never check the fence. (The `dbt` executable itself runs
    # in test_app_real_dbt.py, where the app's worker starts it as deployed.)
    runs = dbt_runs({**specs, "compile": (("compile",), None)})
    compiled, compile_target = runs.pop("compile")

    assert compiled.ok, compiled.output[-3000:]
    assert "STALE_FENCE" not in compiled.output
    assert (compile_target / "compiled" / "semantic_layer" / "models" / "policycenter" / "marts" / "dim_policy.sql").exists()
    all_models: set[str] = set()
    for pipeline, (result, target) in runs.items():
        assert result.ok, result.output[-4000:]
        models, tests = executed(target, "model"), executed(target, "test")
        assert set(models) == tagged_models(target, pipeline) and models, pipeline
        assert set(MARTS[pipeline]) <= set(models)
        assert not all_models & set(models), f"{pipeline} built another pipeline's models"
        all_models |= set(models)
        assert tests and set(tests.values()) == {"pass"}, tests
        assert {"success"} == set(models.values())
    assert len(all_models) == 20

    for marts in MARTS.values():
        for mart, table in marts.items():
            assert wh.count(f"SEMANTIC.{mart}") == len(sample.current_ids(table)), mart
    # Change records applied: update after-image wins, before-image ignored, deletes drop rows.
    assert wh.execute("SELECT account_status FROM SEMANTIC.dim_account WHERE account_id = 10") == [("Active",)]
    assert wh.execute("SELECT paid_amount, reserve_amount, exposure_count FROM SEMANTIC.fct_claim WHERE claim_id = 500") == [(0, 2500, 2)]
    assert wh.execute("SELECT outstanding_amount FROM SEMANTIC.fct_invoice WHERE invoice_id = 801") == [(400,)]

    builds = wh.builds()
    assert sorted((b["pipeline"], b["batch_id"], b["command"], b["status"]) for b in builds) == sorted(
        (p, f"{p}-20251127T030000Z", "build", "SUCCEEDED") for p in MARTS
    )
    assert all(b["region"] == ACTIVE and b["epoch"] == EPOCH and b["finished_at"] >= b["started_at"] for b in builds)


ADDED_POLICIES: list[int] = []


def add_policy(wh: Warehouse, policy_id: int, stamp: str) -> None:
    t = sample.table("pc_policy")
    record = sample.rec(sample.INSERT, policy_id, publicid=f"pc:p{policy_id}", accountid=11, productcode="PersonalAuto")
    wh.load_folders("policycenter", f"policycenter-{stamp}", t.name, t.columns, {1764300000000 + policy_id: [record]})
    ADDED_POLICIES.append(policy_id)


def test_a_stale_or_missing_fence_aborts_before_anything_is_written(wh: Warehouse, dbt_runs) -> None:
    add_policy(wh, 103, "20251128T030000Z")  # a successful build would now grow dim_policy
    before = mart_counts(wh)
    batch = "policycenter-20251128T030000Z"
    select = ("build", "--select", "tag:policycenter")
    runs = dbt_runs({
        "stale_epoch": (select, build_vars("policycenter", batch, epoch=EPOCH - 1)),
        "no_epoch": (select, build_vars("policycenter", batch, epoch=None)),
    })
    expected = {
        "stale_epoch": f"this build carries region={ACTIVE} epoch={EPOCH - 1}, the fence says region={ACTIVE} epoch={EPOCH}",
        "no_epoch": "var fence_epoch is missing",
    }
    for name, (result, target) in runs.items():
        assert not result.ok, name
        assert "STALE_FENCE: " + expected[name] in result.output, result.output[-3000:]
        # dbt stops at on-run-start: no node ran, so it wrote no run_results at all.
        assert not (target / "run_results.json").exists(), f"{name} ran nodes"
    assert mart_counts(wh) == before
    assert wh.builds(batch_id=batch) == []


def test_two_regions_only_the_fence_holder_builds_then_failover_flips_it(wh: Warehouse, dbt_runs) -> None:
    add_policy(wh, 104, "20251129T030000Z")
    batch = "policycenter-20251129T030000Z"
    before = wh.count("SEMANTIC.dim_policy")
    select = ("build", "--select", "tag:policycenter")
    runs = dbt_runs({
        ACTIVE: (select, build_vars("policycenter", batch, ACTIVE, f"0{EPOCH}")),  # compared as an integer
        STANDBY: (select, build_vars("policycenter", batch, STANDBY, EPOCH)),
    })
    assert runs[ACTIVE][0].ok, runs[ACTIVE][0].output[-3000:]
    standby = runs[STANDBY][0]
    assert not standby.ok and f"STALE_FENCE: this build carries region={STANDBY} epoch={EPOCH}, the fence says region={ACTIVE}" in standby.output
    assert wh.count("SEMANTIC.dim_policy") == before + len(ADDED_POLICIES)
    assert [(b["region"], b["status"]) for b in wh.builds(batch_id=batch)] == [(ACTIVE, "SUCCEEDED")]

    # Failover moves the warehouse fence: now only the standby's builds get through.
    wh.set_fence(STANDBY, EPOCH + 1)
    batch2 = "policycenter-20251130T030000Z"
    runs = dbt_runs({
        ACTIVE: (select, build_vars("policycenter", batch2, ACTIVE, EPOCH)),
        STANDBY: (select, build_vars("policycenter", batch2, STANDBY, EPOCH + 1)),
        # Exactly once at the sink (soak seeds 1009/1016/1018): the fence holder's attempt 2 of the
        # batch the old region built is refused, whatever its region's records say.
        "again": (select, build_vars("policycenter", batch, STANDBY, EPOCH + 1, attempt=2, run_id=f"run-{batch}-2")),
    })
    assert runs[STANDBY][0].ok, runs[STANDBY][0].output[-3000:]
    assert not runs[ACTIVE][0].ok and "STALE_FENCE" in runs[ACTIVE][0].output
    assert [(b["region"], b["epoch"], b["status"]) for b in wh.builds(batch_id=batch2)] == [(STANDBY, EPOCH + 1, "SUCCEEDED")]
    again, again_target = runs["again"]
    refusal = f"ALREADY_BUILT: policycenter batch {batch} was built by run run-{batch} (region {ACTIVE}, epoch {EPOCH}"
    assert not again.ok and refusal in again.output, again.output[-3000:]
    assert not (again_target / "run_results.json").exists(), "the refused build ran nodes"
    assert [(b["region"], b["attempt"]) for b in wh.builds(batch_id=batch)] == [(ACTIVE, 1)], "the refused build wrote a build row"


def test_data_tests_fail_on_bad_data_and_the_build_is_recorded_failed(wh: Warehouse, dbt_runs) -> None:
    region, epoch = wh.fence()  # type: ignore[misc]
    t = sample.table("bc_payment")
    orphan = sample.rec(sample.INSERT, 990, publicid="bc:pm990", accountid=20, invoiceid=999, amount="5.00", receiveddate="2025-12-01", paymentmethod="cash")
    batch = "billingcenter-20251201T030000Z"
    wh.load_folders("billingcenter", batch, t.name, t.columns, {1764500000000: [orphan]})
    runs = dbt_runs({"bad": (("build", "--select", "tag:billingcenter"), build_vars("billingcenter", batch, region, epoch))})
    result, target = runs["bad"]
    assert not result.ok
    failed = {name for name, status in executed(target, "test").items() if status == "fail"}
    assert failed == {
        "relationships_fct_payment_invoice_id__invoice_id__ref_fct_invoice_",
        "accepted_values_fct_payment_payment_method__ach__check__creditcard__wire",
    }
    assert [b["status"] for b in wh.builds(batch_id=batch)] == ["FAILED"]
