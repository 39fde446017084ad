"""Snowflake credentials: read once at start from Secrets Manager (IRSA), handed to dbt as SNOWFLAKE_*.

The values go ONLY into the dbt subprocess's environment (profiles/profiles.yml reads them), never
into the app's os.environ, argv or logs. Error messages name keys, never values.
"""

from __future__ import annotations

import json
from typing import Any

REQUIRED = ("account", "user", "password", "role", "warehouse", "database")
OPTIONAL = ("schema", "host", "port", "protocol")  # host/port/protocol: only for a local warehouse stand-in
# The same secret serves the Glue Snowflake connector and the fence writer (components/snowflake.ts
# snowflakeSecretValue): the connector's v1 keys and the fence writer's key-pair `private_key` (SQL API)
# are expected there and ignored here: dbt logs in with the password.
OTHER_CONSUMERS_KEYS = ("sfUser", "sfPassword", "sfWarehouse", "sfDatabase", "sfRole", "private_key")
DEFAULT_SCHEMA = "SEMANTIC"


class CredentialsError(RuntimeError):
    pass


def parse(secret_id: str, secret_string: str | None) -> dict[str, str]:
    """The SNOWFLAKE_* variables for dbt, from the secret's JSON; CredentialsError lists every problem."""
    where = f"Snowflake secret {secret_id!r}"
    try:
        data = json.loads(secret_string or "")
    except ValueError:
        raise CredentialsError(f"{where}: SecretString is not JSON. Fix: store an object with keys {', '.join(REQUIRED)}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{where}: SecretString is not a JSON object. Fix: store an object with keys {', '.join(REQUIRED)}")
    problems = []
    for name in REQUIRED:
        if not isinstance(data.get(name), str) or not data[name]:
            problems.append(f"{name}: required non-empty string")
    for name in ("schema", "host", "protocol"):
        if name in data and (not isinstance(data[name], str) or not data[name]):
            problems.append(f"{name}: must be a non-empty string")
    if "port" in data and not (str(data["port"]).isdigit() and 1 <= int(str(data["port"])) <= 65535):
        problems.append("port: must be 1..65535")
    if "protocol" in data and data["protocol"] not in ("http", "https"):
        problems.append("protocol: must be http or https")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL) - set(OTHER_CONSUMERS_KEYS))
    if unknown:
        problems.append("unknown keys: " + ", ".join(unknown) + " (check the spelling)")
    if problems:
        raise CredentialsError(f"{where} is invalid: " + "; ".join(problems) + ". Fix: update the secret's JSON")
    env = {"SNOWFLAKE_" + name.upper(): data[name] for name in REQUIRED}
    env["SNOWFLAKE_SCHEMA"] = data.get("schema", DEFAULT_SCHEMA)
    for name in ("host", "port", "protocol"):
        if name in data:
            env["SNOWFLAKE_" + name.upper()] = str(data[name])
    return env


def fetch(secretsmanager: Any, secret_id: str) -> dict[str, str]:
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id)
    except Exception as exc:
        code = exc.response.get("Error", {}).get("Code") if hasattr(exc, "response") else type(exc).__name__
        raise CredentialsError(
            f"could not read Snowflake secret {secret_id!r}: {code}. Fix: check SNOWFLAKE_SECRET_ID and the pod role's secretsmanager:GetSecretValue"
        ) from None
    return parse(secret_id, value.get("SecretString"))
