"""The run registry: one item per (batchId, attempt) in this region's DynamoDB table (DBT_RUNS_TABLE).

Every name of the table's schema lives here, so the app, the tests and the docs share one source.
Every state change is a conditional write, so any replica may answer any request and exactly one
worker executes a run. No Flask here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

PK = "pk"
SK = "sk"
GSI_BY_STATUS = "byStatus"
GSI_HASH = "status"
GSI_RANGE = "queuedAt"
TTL_ATTRIBUTE = "expiresAt"
TTL_SECONDS = 90 * 86400

QUEUED, RUNNING, SUCCEEDED, FAILED, LOST, INTERRUPTED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "LOST", "INTERRUPTED"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, LOST, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, LOST, INTERRUPTED)
MAX_ATTEMPT = 999  # the sort key pads the attempt to three digits

BATCH_ID_PATTERN = r"[a-z][a-z0-9-]{0,22}[a-z0-9]-\d{8}T\d{6}Z"
RUN_ID_RE = re.compile(r"^(" + BATCH_ID_PATTERN + r")\.([1-9]\d{0,2})$")
# Fields whose equality makes a repeated POST "the same request".
SAME_REQUEST_FIELDS = ("pipeline", "command", "select", "varsJson", "fence")
VIEW_FIELDS = ("runId", "batchId", "pipeline", "command", "attempt", "status", "queuedAt", "startedAt", "finishedAt", "heartbeatAt", "fence")


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the runs table (tests build it from this; the infrastructure must match)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
            {"AttributeName": GSI_HASH, "AttributeType": "S"},
            {"AttributeName": GSI_RANGE, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI_BY_STATUS,
                "KeySchema": [{"AttributeName": GSI_HASH, "KeyType": "HASH"}, {"AttributeName": GSI_RANGE, "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def run_id(batch_id: str, attempt: int) -> str:
    """Deterministic, so any replica computes the same id."""
    return f"{batch_id}.{attempt}"


def parse_run_id(value: str) -> tuple[str, int] | None:
    m = RUN_ID_RE.match(value or "")
    return (m.group(1), int(m.group(2))) if m else None


def key(batch_id: str, attempt: int) -> dict[str, str]:
    return {PK: f"RUN#{batch_id}", SK: f"ATTEMPT#{attempt:03d}"}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch_of(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def view(run: dict[str, Any]) -> dict[str, Any]:
    """What the API returns: never the task token, the worker id or internal keys."""
    out = {f: plain(run.get(f)) for f in VIEW_FIELDS}
    if run.get("error"):
        out["error"] = run["error"]
    if run.get("alreadyBuilt"):
        out["alreadyBuilt"] = True
    return out


def is_stale(run: dict[str, Any], now: float, lost_after: float) -> bool:
    return run.get("status") == RUNNING and now - epoch_of(run.get("heartbeatAt") or run["startedAt"]) > lost_after


# Expression attribute names usable in conditions (update() sends only those a condition mentions).
CONDITION_NAMES = {"#pk": PK, "#status": "status", "#w": "workerId", "#hb": "heartbeatAt", "#th": "taskHeartbeatAt"}


def conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class RunStore:
    """Thin, conditional DynamoDB operations on run items (a boto3 Table resource)."""

    def __init__(self, table: Any, clock: Callable[[], float]):
        self.table = table
        self.clock = clock

    def new_item(self, request: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        item = {
            **key(request["batchId"], request["attempt"]),
            "runId": run_id(request["batchId"], request["attempt"]),
            "batchId": request["batchId"],
            "pipeline": request["pipeline"],
            "command": request["command"],
            "select": request["select"],
            "varsJson": json.dumps(request["vars"], sort_keys=True, separators=(",", ":")),
            "attempt": request["attempt"],
            "fence": dict(request["fence"]),
            "status": QUEUED,
            "queuedAt": iso(now),
            "startedAt": None,
            "finishedAt": None,
            "heartbeatAt": None,
            "workerId": None,
            "error": None,
            TTL_ATTRIBUTE: int(now) + TTL_SECONDS,
        }
        if request.get("taskToken"):
            item["taskToken"] = request["taskToken"]
        if request.get("lease"):
            item["lease"] = dict(request["lease"])
        if request.get("deadlines"):
            item["deadlines"] = dict(request["deadlines"])
        return item

    def put_new(self, item: dict[str, Any]) -> bool:
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(#pk)", ExpressionAttributeNames={"#pk": PK})
            return True
        except ClientError as exc:
            if conditional_failed(exc):
                return False
            raise

    def get(self, batch_id: str, attempt: int) -> dict[str, Any] | None:
        return self.table.get_item(Key=key(batch_id, attempt), ConsistentRead=True).get("Item")

    def attempts(self, batch_id: str) -> list[dict[str, Any]]:
        out = self.table.query(
            KeyConditionExpression="#pk = :pk", ExpressionAttributeNames={"#pk": PK}, ExpressionAttributeValues={":pk": f"RUN#{batch_id}"}, ConsistentRead=True
        )
        return out.get("Items", [])

    def by_status(self, status: str, limit: int = 25) -> list[dict[str, Any]]:
        """Oldest first (the GSI's range key is queuedAt). Eventually consistent: callers re-check with conditions."""
        out = self.table.query(
            IndexName=GSI_BY_STATUS,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": GSI_HASH},
            ExpressionAttributeValues={":s": status},
            ScanIndexForward=True,
            Limit=limit,
        )
        return out.get("Items", [])

    def update(self, run: dict[str, Any], set_fields: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """SET fields if `condition` holds; the new item, or None when the condition failed."""
        condition = "attribute_exists(#pk) AND (" + condition + ")"
        names = {f"#f{i}": f for i, f in enumerate(set_fields)}
        names.update({n: attr for n, attr in CONDITION_NAMES.items() if n in condition})
        vals = {f":v{i}": v for i, v in enumerate(set_fields.values())}
        vals.update(values or {})
        try:
            out = self.table.update_item(
                Key={PK: run[PK], SK: run[SK]},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(set_fields))),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=vals,
                ReturnValues="ALL_NEW",
            )
            return out["Attributes"]
        except ClientError as exc:
            if conditional_failed(exc):
                return None
            raise

    def claim(self, run: dict[str, Any], worker_id: str) -> dict[str, Any] | None:
        now = iso(self.clock())
        return self.update(run, {"status": RUNNING, "workerId": worker_id, "startedAt": now, "heartbeatAt": now}, "#status = :queued", {":queued": QUEUED})

    def renew(self, run: dict[str, Any], worker_id: str) -> dict[str, Any] | None:
        return self.update(run, {"heartbeatAt": iso(self.clock())}, "#status = :running AND #w = :me", {":running": RUNNING, ":me": worker_id})

    def finish_owned(self, run: dict[str, Any], worker_id: str, status: str, error: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """A worker's own run ends; fails if someone else (a LOST sweep) already ended it."""
        fields = {"status": status, "finishedAt": iso(self.clock()), "error": error, **(extra or {})}
        return self.update(run, fields, "#status = :running AND #w = :me", {":running": RUNNING, ":me": worker_id})

    def correct_lost(self, run: dict[str, Any], worker_id: str) -> dict[str, Any] | None:
        """A run declared LOST (stale heartbeat) whose own worker then saw dbt succeed: the build exists,
        so the record says SUCCEEDED, marked builtAfterLost (a later attempt adopts it, never rebuilds)."""
        fields = {"status": SUCCEEDED, "finishedAt": iso(self.clock()), "error": None, "builtAfterLost": True}
        return self.update(run, fields, "#status = :lost AND #w = :me", {":lost": LOST, ":me": worker_id})

    def fail_queued(self, run: dict[str, Any], error: str) -> dict[str, Any] | None:
        return self.update(run, {"status": FAILED, "finishedAt": iso(self.clock()), "error": error}, "#status = :queued", {":queued": QUEUED})

    def mark_lost(self, run: dict[str, Any], error: str) -> dict[str, Any] | None:
        """RUNNING with exactly the stale heartbeat we saw: no live worker renewed it since."""
        return self.update(
            run,
            {"status": LOST, "finishedAt": iso(self.clock()), "error": error},
            "#status = :running AND #hb = :seen",
            {":running": RUNNING, ":seen": run.get("heartbeatAt")},
        )

    def set_token(self, run: dict[str, Any], token: str, lease: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """A retried task's new token (and its execution's lease, when it carries one) replace the old."""
        return self.update(run, {"taskToken": token, **({"lease": dict(lease)} if lease else {})}, "attribute_exists(#pk)")

    def record_callback(self, run: dict[str, Any], error: str | None) -> None:
        self.update(run, {"callbackAt": iso(self.clock()), "callbackError": error}, "attribute_exists(#pk)")

    def claim_task_heartbeat(self, run: dict[str, Any], interval: float) -> bool:
        """One replica per interval sends a QUEUED run's SendTaskHeartbeat (they all poll)."""
        now = self.clock()
        return (
            self.update(
                run,
                {"taskHeartbeatAt": iso(now)},
                "#status = :queued AND (attribute_not_exists(#th) OR #th < :due)",
                {":queued": QUEUED, ":due": iso(now - interval)},
            )
            is not None
        )
