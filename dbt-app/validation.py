"""Request checks for the dbt API: bearer auth and the POST body. Pure functions, no Flask, no AWS."""

from __future__ import annotations

import hmac
import json
import re
from datetime import datetime
from typing import Any

from registry import MAX_ATTEMPT

BATCH_ID_RE = re.compile(r"^([a-z][a-z0-9-]{0,22}[a-z0-9])-(\d{8})T(\d{6})Z$")  # same as registry.BATCH_ID_PATTERN
SELECT_RE = re.compile(r"^[A-Za-z0-9_.:+*@,/ -]{1,1000}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
COMMANDS = ("build", "run", "test", "seed", "snapshot")
FIELDS = ("batchId", "pipeline", "command", "select", "vars", "attempt", "fence", "taskToken", "lease", "deadlines")
LEASE_PK_RE = re.compile(r"^PIPELINE#[a-z][a-z0-9-]{0,22}[a-z0-9]$")
LEASE_SK = ("LOCK#DOWNSTREAM",)
EXECUTION_ARN_RE = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[!-9;-~]{1,80}:[!-9;-~]{1,80}$", re.ASCII)
MAX_VARS_JSON = 16_384
MAX_EPOCH = 2**53 - 1

Response = tuple[int, dict[str, Any]]


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    return status, {"error": code, "message": message, **extra}


def authorize(header: str | None, token: str, read_token: str | None = None, write: bool = True) -> Response | None:
    """None if allowed, else the 401/403 response. Constant-time comparisons."""
    if not token:
        raise ValueError("DBT_API_TOKEN is empty; refusing to run an unauthenticated API")
    match = re.fullmatch(r"Bearer ([\x21-\x7e]{1,4096})", header or "")
    if not match:
        return error(401, "Unauthorized", "missing or malformed Authorization header. Fix: send 'Authorization: Bearer <token>'")
    presented = match.group(1).encode()
    if hmac.compare_digest(presented, token.encode()):
        return None
    if read_token and hmac.compare_digest(presented, read_token.encode()):
        return error(403, "Forbidden", "this token may read runs but not start them. Fix: use the read-write token") if write else None
    return error(401, "Unauthorized", "invalid bearer token. Fix: use the token from the dbt-app-api-token Secret")


def batch_id_problem(batch_id: Any) -> str | None:
    if not isinstance(batch_id, str):
        return "batchId: required string like policycenter-20261127T020000Z"
    m = BATCH_ID_RE.match(batch_id)
    if not m:
        return f"batchId: {batch_id[:80]!r} is not <pipeline>-<yyyyMMdd>T<HHmmss>Z"
    try:
        datetime.strptime(m.group(2) + m.group(3), "%Y%m%d%H%M%S")
    except ValueError:
        return f"batchId: {batch_id!r} names no real UTC time"
    return None


def as_int(value: Any) -> int | None:
    """The integer a JSON number denotes, or None. 3.0 is the integer 3 (JSON Schema's `integer`:
    any number with a zero fractional part); true/false are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def validate_create(body: Any) -> tuple[dict[str, Any] | None, Response | None]:
    """(request with defaults, None) or (None, 400/422 response listing every problem)."""
    if not isinstance(body, dict):
        return None, error(400, "BadRequest", "body must be a JSON object")
    problems: list[str] = []
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        problems.append("unknown fields: " + ", ".join(u[:40] for u in unknown[:10]) + " (allowed: " + ", ".join(FIELDS) + ")")
    problem = batch_id_problem(body.get("batchId"))
    if problem:
        problems.append(problem)
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, str):
        problems.append("pipeline: required string")
    elif not problem and BATCH_ID_RE.match(body["batchId"]).group(1) != pipeline:
        problems.append(f"batchId: belongs to another pipeline than {pipeline[:40]!r}")
    command = body.get("command", "build")
    if command not in COMMANDS:
        problems.append("command: must be one of " + ", ".join(COMMANDS))
    select = body.get("select")
    if select is not None and (not isinstance(select, str) or not SELECT_RE.match(select)):
        problems.append("select: must be a dbt selector string (letters, digits, _ . : + * @ , / - and spaces; 1-1000)")
    variables = body.get("vars")
    if variables is not None and not isinstance(variables, dict):
        problems.append("vars: must be an object")
    elif variables is not None and len(json.dumps(variables)) > MAX_VARS_JSON:
        problems.append(f"vars: larger than {MAX_VARS_JSON} bytes of JSON")
    attempt = as_int(body.get("attempt", 1))
    if attempt is None or not 1 <= attempt <= MAX_ATTEMPT:
        problems.append(f"attempt: must be an integer 1..{MAX_ATTEMPT}")
    fence = body.get("fence")
    if not isinstance(fence, dict):
        problems.append("fence: required object {region, epoch} (the control table's fence the caller checked)")
    else:
        extra = sorted(set(fence) - {"region", "epoch"})
        if extra:
            problems.append("fence: unknown fields " + ", ".join(e[:40] for e in extra[:10]))
        if not isinstance(fence.get("region"), str) or not REGION_RE.match(fence["region"]):
            problems.append("fence.region: must be an AWS region name like us-east-1")
        epoch = as_int(fence.get("epoch"))
        if epoch is None or not 1 <= epoch <= MAX_EPOCH:
            problems.append(f"fence.epoch: must be an integer 1..{MAX_EPOCH}")
    token = body.get("taskToken")
    if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 1024):
        problems.append("taskToken: must be a string of 1..1024 characters")
    lease, lease_issues = checked_lease(body.get("lease"), pipeline)
    deadlines, deadline_issues = checked_deadlines(body.get("deadlines"))
    problems += lease_issues + deadline_issues
    if problems:
        return None, error(422, "ValidationError", "; ".join(problems))
    return {
        "batchId": body["batchId"],
        "pipeline": pipeline,
        "command": command,
        "select": select,
        "vars": variables or {},
        "attempt": attempt,
        "fence": {"region": fence["region"], "epoch": epoch},
        "taskToken": token,
        "lease": lease,
        "deadlines": deadlines,
    }, None


def checked_lease(lease: Any, pipeline: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """`lease` is optional: {pk: PIPELINE#<pipeline>, sk: LOCK#DOWNSTREAM, holder: execution ARN, seconds: 60..86400}."""
    if lease is None:
        return None, []
    if not isinstance(lease, dict):
        return None, ["lease: must be an object {pk, sk, holder, seconds}"]
    problems = []
    extra = sorted(set(lease) - {"pk", "sk", "holder", "seconds"})
    if extra:
        problems.append("lease: unknown fields " + ", ".join(e[:40] for e in extra[:10]))
    pk = lease.get("pk")
    if not isinstance(pk, str) or not LEASE_PK_RE.match(pk):
        problems.append("lease.pk: must be PIPELINE#<pipeline>")
    elif isinstance(pipeline, str) and pk != f"PIPELINE#{pipeline}":
        problems.append("lease.pk: names another pipeline's lock")
    if lease.get("sk") not in LEASE_SK:
        problems.append("lease.sk: must be " + " or ".join(LEASE_SK))
    if not isinstance(lease.get("holder"), str) or not EXECUTION_ARN_RE.match(lease["holder"]):
        problems.append("lease.holder: must be a Step Functions execution ARN")
    seconds = as_int(lease.get("seconds"))
    if seconds is None or not 60 <= seconds <= 86_400:
        problems.append("lease.seconds: must be an integer 60..86400")
    if problems:
        return None, problems
    return {"pk": lease["pk"], "sk": lease["sk"], "holder": lease["holder"], "seconds": seconds}, []


def checked_deadlines(deadlines: Any) -> tuple[dict[str, int] | None, list[str]]:
    """`deadlines` is optional: {maxQueueMinutes, maxRunMinutes}, each 1..1440."""
    if deadlines is None:
        return None, []
    if not isinstance(deadlines, dict):
        return None, ["deadlines: must be an object {maxQueueMinutes, maxRunMinutes}"]
    problems = []
    extra = sorted(set(deadlines) - {"maxQueueMinutes", "maxRunMinutes"})
    if extra:
        problems.append("deadlines: unknown fields " + ", ".join(e[:40] for e in extra[:10]))
    values: dict[str, int] = {}
    for name in ("maxQueueMinutes", "maxRunMinutes"):
        value = as_int(deadlines.get(name))
        if value is None or not 1 <= value <= 1_440:
            problems.append(f"deadlines.{name}: must be an integer 1..1440")
        else:
            values[name] = value
    return (None, problems) if problems else (values, [])
