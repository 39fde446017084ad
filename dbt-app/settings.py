"""The app's environment: the ONLY module that reads os.environ (a test walks the AST to hold that).

It reads exactly the variables listed in env-contract.json (shipped in the image beside this file),
applies the contract's defaults and validates every value. load() raises SettingsError naming every
bad variable, its value and the fix, so a pod with a broken manifest fails at start with one message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONTRACT_PATH = Path(__file__).with_name("env-contract.json")
CONTRACT: dict[str, dict] = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))["variables"]

# Passed through to the dbt subprocess (its environment is built from scratch: no app secrets leak).
DBT_PASSTHROUGH = ("PATH", "HOME", "TMPDIR", "DBT_LOG_PATH", "DBT_TARGET_PATH", "DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "PYTHONDONTWRITEBYTECODE")

REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
SECONDS = (
    "DBT_RUN_TIMEOUT_SECONDS",
    "RUN_HEARTBEAT_SECONDS",
    "RUN_LOST_AFTER_SECONDS",
    "TASK_HEARTBEAT_SECONDS",
    "QUEUE_POLL_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
)


class SettingsError(ValueError):
    """Every problem with the environment, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "Invalid dbt app environment (%d problem%s; see dbt-app/env-contract.json):\n" % (len(problems), "" if len(problems) == 1 else "s")
            + "\n".join("  - " + p for p in problems)
        )


@dataclass(frozen=True)
class Settings:
    api_token: str
    api_read_token: str | None
    port: int
    aws_region: str
    runs_table: str
    control_table: str | None
    snowflake_secret_id: str
    dbt_target: str
    dbt_project_dir: str
    dbt_profiles_dir: str
    dbt_bin: str
    dbt_run_timeout_seconds: float
    run_heartbeat_seconds: float
    run_lost_after_seconds: float
    task_heartbeat_seconds: float
    queue_poll_seconds: float
    shutdown_grace_seconds: float
    dbt_env: tuple[tuple[str, str], ...]
    """The contract variables handed to the dbt subprocess (DBT_PASSTHROUGH, with defaults)."""


def _shown(value: str | None, name: str) -> str:
    if value is None:
        return "(not set)"
    if CONTRACT[name]["from"] == "secret":
        return "(%d characters, not shown)" % len(value)
    return json.dumps(value)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads and validates the contract's variables; raises SettingsError listing every problem."""
    env = os.environ if environ is None else environ
    raw: dict[str, str | None] = {}
    for name, spec in CONTRACT.items():
        value = env.get(name)
        raw[name] = value if value not in (None, "") else spec.get("default")
    problems: list[str] = []

    def bad(name: str, why: str, fix: str) -> None:
        problems.append(f"{name} = {_shown(env.get(name), name)}: {why}. Fix: {fix}")

    for name, spec in CONTRACT.items():
        if spec.get("required") and raw[name] is None:
            bad(name, "is required", "set it in the Deployment; " + spec["description"])
    token, read_token = raw["DBT_API_TOKEN"], raw["DBT_API_READ_TOKEN"]
    if token is not None and len(token) < 16:
        bad("DBT_API_TOKEN", "is shorter than 16 characters", "mount a random token, e.g. openssl rand -hex 32")
    if token is not None and read_token is not None and read_token == token:
        bad("DBT_API_READ_TOKEN", "equals DBT_API_TOKEN, so read-only callers could start runs", "use a different token or leave it unset")
    port = raw["PORT"]
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        bad("PORT", "is not a TCP port", "use 1..65535, e.g. 8080")
    region = raw["AWS_REGION"]
    if region is not None and not REGION_RE.match(region):
        bad("AWS_REGION", "is not an AWS region name", "use e.g. us-east-1")
    table = raw["DBT_RUNS_TABLE"]
    if table is not None and not TABLE_RE.match(table):
        bad("DBT_RUNS_TABLE", "is not a DynamoDB table name", "use 3-255 letters, digits, _ . or -")
    control = raw["CONTROL_TABLE"]
    if control is not None and not TABLE_RE.match(control):
        bad("CONTROL_TABLE", "is not a DynamoDB table name", "use the control table's name, e.g. etl-platform-control")
    seconds: dict[str, float] = {}
    for name in SECONDS:
        try:
            seconds[name] = float(raw[name] or "")
            if not 0 < seconds[name] <= 7 * 86400:
                raise ValueError
        except ValueError:
            bad(name, "is not a number of seconds in (0, 604800]", "use e.g. %s" % CONTRACT[name]["default"])
    if {"RUN_HEARTBEAT_SECONDS", "RUN_LOST_AFTER_SECONDS"} <= seconds.keys() and seconds["RUN_LOST_AFTER_SECONDS"] <= 2 * seconds["RUN_HEARTBEAT_SECONDS"]:
        bad("RUN_LOST_AFTER_SECONDS", "is not more than twice RUN_HEARTBEAT_SECONDS, so a healthy run could be declared LOST", "raise it or lower RUN_HEARTBEAT_SECONDS")
    if problems:
        raise SettingsError(problems)
    return Settings(
        api_token=token or "",
        api_read_token=read_token,
        port=int(port or "0"),
        aws_region=region or "",
        runs_table=table or "",
        control_table=control or None,
        snowflake_secret_id=raw["SNOWFLAKE_SECRET_ID"] or "",
        dbt_target=raw["DBT_TARGET"] or "",
        dbt_project_dir=raw["DBT_PROJECT_DIR"] or "",
        dbt_profiles_dir=raw["DBT_PROFILES_DIR"] or "",
        dbt_bin=raw["DBT_BIN"] or "",
        dbt_run_timeout_seconds=seconds["DBT_RUN_TIMEOUT_SECONDS"],
        run_heartbeat_seconds=seconds["RUN_HEARTBEAT_SECONDS"],
        run_lost_after_seconds=seconds["RUN_LOST_AFTER_SECONDS"],
        task_heartbeat_seconds=seconds["TASK_HEARTBEAT_SECONDS"],
        queue_poll_seconds=seconds["QUEUE_POLL_SECONDS"],
        shutdown_grace_seconds=seconds["SHUTDOWN_GRACE_SECONDS"],
        dbt_env=tuple((n, raw[n]) for n in DBT_PASSTHROUGH if raw[n] is not None),  # type: ignore[misc]
    )
