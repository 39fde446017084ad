"""A small CDA-shaped sample for the three pipelines of Pulumi.prod-east.yaml.

Each table is a list of CDA timestamp folders, each a list of change records as Guidewire CDA
writes them (lower-case column names; ``gwcbi___operation``: 1 delete, 2 insert, 3 update
before-image, 4 update after-image). The records exercise what the semantic layer must handle:
updates, a before-image, deletes, and one folder delivered twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INSERT, UPDATE_BEFORE, UPDATE_AFTER, DELETE = 2, 3, 4, 1
CDA_KEYS = (("id", "bigint"), ("gwcbi___seqval_hex", "string"), ("gwcbi___operation", "int"))


@dataclass(frozen=True)
class SampleTable:
    pipeline: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Spark simpleString type), CDA keys first
    folders: Mapping[int, Sequence[Mapping[str, Any]]]  # CDA folder millis -> change records


_seq = iter(range(1, 1_000_000))


def rec(op: int, id_: int, **values: Any) -> dict[str, Any]:
    """One change record; the sequence grows with every call, as CDA's does."""
    return {"id": id_, "gwcbi___seqval_hex": f"{next(_seq):016X}", "gwcbi___operation": op, **values}


def _table(pipeline: str, name: str, columns: Sequence[tuple[str, str]], folders: Mapping[int, Sequence[Mapping[str, Any]]]) -> SampleTable:
    return SampleTable(pipeline, name, tuple(CDA_KEYS) + tuple(columns), folders)


F1, F2 = 1764208800000, 1764212400000  # two CDA folders (2025-11-27 02:00 and 03:00 UTC)

TABLES: tuple[SampleTable, ...] = (
    # ---- policycenter
    _table(
        "policycenter",
        "pc_contact",
        [("publicid", "string"), ("subtype", "string"), ("name", "string"), ("firstname", "string"), ("lastname", "string"), ("emailaddress1", "string")],
        {
            F1: [
                rec(INSERT, 1, publicid="pc:c1", subtype="Person", firstname="Ada", lastname="Lovelace", emailaddress1="ada@example.com"),
                rec(INSERT, 2, publicid="pc:c2", subtype="Company", name="Acme Mutual", emailaddress1="ops@acme.example"),
                rec(INSERT, 3, publicid="pc:c3", subtype="Person", firstname="Alan", lastname="Turing"),
            ]
        },
    ),
    _table(
        "policycenter",
        "pc_account",
        [("publicid", "string"), ("accountnumber", "string"), ("accountstatus", "string"), ("accountholdercontactid", "bigint"), ("createtime", "timestamp")],
        {
            F1: [
                rec(INSERT, 10, publicid="pc:a10", accountnumber="A-0010", accountstatus="Pending", accountholdercontactid=1, createtime="2025-11-01 09:00:00"),
                rec(INSERT, 11, publicid="pc:a11", accountnumber="A-0011", accountstatus="Active", accountholdercontactid=2, createtime="2025-11-02 09:00:00"),
                rec(INSERT, 12, publicid="pc:a12", accountnumber="A-0012", accountstatus="Active", accountholdercontactid=3, createtime="2025-11-03 09:00:00"),
            ],
            F2: [
                rec(UPDATE_BEFORE, 10, publicid="pc:a10", accountnumber="A-0010", accountstatus="Pending", accountholdercontactid=1, createtime="2025-11-01 09:00:00"),
                rec(UPDATE_AFTER, 10, publicid="pc:a10", accountnumber="A-0010", accountstatus="Active", accountholdercontactid=1, createtime="2025-11-01 09:00:00"),
            ],
        },
    ),
    _table(
        "policycenter",
        "pc_policy",
        [("publicid", "string"), ("accountid", "bigint"), ("productcode", "string"), ("originaleffectivedate", "date")],
        {
            F1: [
                rec(INSERT, 100, publicid="pc:p100", accountid=10, productcode="PersonalAuto", originaleffectivedate="2025-12-01"),
                rec(INSERT, 101, publicid="pc:p101", accountid=11, productcode="CommercialProperty", originaleffectivedate="2025-12-15"),
                rec(INSERT, 102, publicid="pc:p102", accountid=12, productcode="Homeowners", originaleffectivedate="2026-01-01"),
            ],
            F2: [rec(DELETE, 102, publicid="pc:p102", accountid=12, productcode="Homeowners", originaleffectivedate="2026-01-01")],
        },
    ),
    _table(
        "policycenter",
        "pc_job",
        [("publicid", "string"), ("jobnumber", "string"), ("subtype", "string"), ("closedate", "timestamp")],
        {
            F1: [
                rec(INSERT, 200, publicid="pc:j200", jobnumber="J-200", subtype="Submission", closedate="2025-11-20 10:00:00"),
                rec(INSERT, 201, publicid="pc:j201", jobnumber="J-201", subtype="Submission", closedate="2025-11-21 10:00:00"),
                rec(INSERT, 202, publicid="pc:j202", jobnumber="J-202", subtype="PolicyChange"),
            ]
        },
    ),
    _table(
        "policycenter",
        "pc_policyperiod",
        [
            ("publicid", "string"),
            ("policyid", "bigint"),
            ("jobid", "bigint"),
            ("policynumber", "string"),
            ("status", "string"),
            ("periodstart", "date"),
            ("periodend", "date"),
            ("totalpremiumrpt", "decimal(18,2)"),
            ("mostrecentmodel", "boolean"),
        ],
        {
            F1: [
                rec(
                    INSERT,
                    300,
                    publicid="pc:pp300",
                    policyid=100,
                    jobid=200,
                    policynumber="PA-100",
                    status="Bound",
                    periodstart="2025-12-01",
                    periodend="2026-12-01",
                    totalpremiumrpt="1200.00",
                    mostrecentmodel=True,
                ),
                rec(
                    INSERT,
                    301,
                    publicid="pc:pp301",
                    policyid=101,
                    jobid=201,
                    policynumber="CP-101",
                    status="Quoted",
                    periodstart="2025-12-15",
                    periodend="2026-06-15",
                    totalpremiumrpt="5400.50",
                    mostrecentmodel=True,
                ),
            ],
            F2: [
                rec(
                    UPDATE_AFTER,
                    301,
                    publicid="pc:pp301",
                    policyid=101,
                    jobid=201,
                    policynumber="CP-101",
                    status="Bound",
                    periodstart="2025-12-15",
                    periodend="2026-06-15",
                    totalpremiumrpt="5400.50",
                    mostrecentmodel=True,
                ),
                rec(
                    INSERT,
                    302,
                    publicid="pc:pp302",
                    policyid=100,
                    jobid=202,
                    policynumber="PA-100",
                    status="Draft",
                    periodstart="2026-03-01",
                    periodend="2026-12-01",
                    totalpremiumrpt="300.00",
                    mostrecentmodel=False,
                ),
            ],
        },
    ),
    # ---- claimcenter
    _table(
        "claimcenter",
        "cc_contact",
        [("publicid", "string"), ("subtype", "string"), ("name", "string"), ("firstname", "string"), ("lastname", "string")],
        {
            F1: [
                rec(INSERT, 1, publicid="cc:c1", subtype="Person", firstname="Grace", lastname="Hopper"),
                rec(INSERT, 2, publicid="cc:c2", subtype="Company", name="Initech"),
            ]
        },
    ),
    _table(
        "claimcenter",
        "cc_claim",
        [
            ("publicid", "string"),
            ("claimnumber", "string"),
            ("policynumber", "string"),
            ("insuredcontactid", "bigint"),
            ("state", "string"),
            ("lossdate", "timestamp"),
            ("reporteddate", "timestamp"),
        ],
        {
            F1: [
                rec(
                    INSERT,
                    500,
                    publicid="cc:cl500",
                    claimnumber="CL-500",
                    policynumber="PA-100",
                    insuredcontactid=1,
                    state="open",
                    lossdate="2025-11-10 08:00:00",
                    reporteddate="2025-11-12 08:00:00",
                ),
                rec(
                    INSERT,
                    501,
                    publicid="cc:cl501",
                    claimnumber="CL-501",
                    policynumber="CP-101",
                    insuredcontactid=2,
                    state="draft",
                    lossdate="2025-11-15 08:00:00",
                    reporteddate="2025-11-15 18:00:00",
                ),
            ],
            F2: [
                rec(
                    UPDATE_AFTER,
                    501,
                    publicid="cc:cl501",
                    claimnumber="CL-501",
                    policynumber="CP-101",
                    insuredcontactid=2,
                    state="closed",
                    lossdate="2025-11-15 08:00:00",
                    reporteddate="2025-11-15 18:00:00",
                )
            ],
        },
    ),
    _table(
        "claimcenter",
        "cc_exposure",
        [("publicid", "string"), ("claimid", "bigint"), ("exposuretype", "string"), ("state", "string")],
        {
            F1: [
                rec(INSERT, 600, publicid="cc:e600", claimid=500, exposuretype="VehicleDamage", state="open"),
                rec(INSERT, 601, publicid="cc:e601", claimid=500, exposuretype="BodilyInjury", state="open"),
                rec(INSERT, 602, publicid="cc:e602", claimid=501, exposuretype="PropertyDamage", state="closed"),
            ]
        },
    ),
    _table(
        "claimcenter",
        "cc_transaction",
        [
            ("publicid", "string"),
            ("claimid", "bigint"),
            ("exposureid", "bigint"),
            ("subtype", "string"),
            ("amount", "decimal(18,2)"),
            ("status", "string"),
            ("createtime", "timestamp"),
        ],
        {
            F1: [
                rec(
                    INSERT,
                    700,
                    publicid="cc:t700",
                    claimid=500,
                    exposureid=600,
                    subtype="Reserve",
                    amount="2500.00",
                    status="submitted",
                    createtime="2025-11-12 09:00:00",
                ),
                rec(
                    INSERT, 701, publicid="cc:t701", claimid=500, exposureid=600, subtype="Payment", amount="800.00", status="submitted", createtime="2025-11-13 09:00:00"
                ),
                rec(
                    INSERT, 702, publicid="cc:t702", claimid=501, exposureid=602, subtype="Payment", amount="150.00", status="submitted", createtime="2025-11-16 09:00:00"
                ),
            ],
            F2: [
                rec(DELETE, 701, publicid="cc:t701", claimid=500, exposureid=600, subtype="Payment", amount="800.00", status="voided", createtime="2025-11-13 09:00:00")
            ],
        },
    ),
    # ---- billingcenter
    _table(
        "billingcenter",
        "bc_account",
        [("publicid", "string"), ("accountnumber", "string"), ("accountname", "string")],
        {
            F1: [
                rec(INSERT, 20, publicid="bc:a20", accountnumber="A-0010", accountname="Ada Lovelace"),
                rec(INSERT, 21, publicid="bc:a21", accountnumber="A-0011", accountname="Acme Mutual"),
            ]
        },
    ),
    _table(
        "billingcenter",
        "bc_invoice",
        [("publicid", "string"), ("accountid", "bigint"), ("invoicenumber", "string"), ("amount", "decimal(18,2)"), ("duedate", "date"), ("status", "string")],
        {
            F1: [
                rec(INSERT, 800, publicid="bc:i800", accountid=20, invoicenumber="INV-800", amount="100.00", duedate="2025-12-01", status="Billed"),
                rec(INSERT, 801, publicid="bc:i801", accountid=21, invoicenumber="INV-801", amount="450.00", duedate="2025-12-15", status="Planned"),
            ],
            F2: [rec(UPDATE_AFTER, 800, publicid="bc:i800", accountid=20, invoicenumber="INV-800", amount="100.00", duedate="2025-12-01", status="Paid")],
        },
    ),
    _table(
        "billingcenter",
        "bc_payment",
        [("publicid", "string"), ("accountid", "bigint"), ("invoiceid", "bigint"), ("amount", "decimal(18,2)"), ("receiveddate", "date"), ("paymentmethod", "string")],
        {
            F2: [
                rec(INSERT, 900, publicid="bc:pm900", accountid=20, invoiceid=800, amount="100.00", receiveddate="2025-11-28", paymentmethod="ach"),
                rec(INSERT, 901, publicid="bc:pm901", accountid=21, invoiceid=801, amount="50.00", receiveddate="2025-12-20", paymentmethod="check"),
            ]
        },
    ),
)

PIPELINES: tuple[str, ...] = ("policycenter", "claimcenter", "billingcenter")


def tables_of(pipeline: str) -> list[SampleTable]:
    found = [t for t in TABLES if t.pipeline == pipeline]
    if not found:
        raise ValueError(f"unknown pipeline {pipeline!r}; the sample has {', '.join(PIPELINES)}")
    return found


def table(name: str) -> SampleTable:
    for t in TABLES:
        if t.name == name:
            return t
    raise ValueError(f"unknown table {name!r}; the sample has {', '.join(t.name for t in TABLES)}")


def current_ids(name: str) -> set[int]:
    """The IDs alive after all change records, worked out here in Python (an oracle for the SQL):
    the newest record per ID by (folder, sequence), before-images ignored, deletes remove."""
    newest: dict[int, tuple[int, str, int]] = {}
    for ts, records in table(name).folders.items():
        for r in records:
            if r["gwcbi___operation"] == UPDATE_BEFORE:
                continue
            key = (ts, r["gwcbi___seqval_hex"], r["gwcbi___operation"])
            if r["id"] not in newest or key[:2] > newest[r["id"]][:2]:
                newest[r["id"]] = key
    return {i for i, (_, _, op) in newest.items() if op != DELETE}


def change_records(name: str) -> int:
    return sum(len(rs) for rs in table(name).folders.values())
