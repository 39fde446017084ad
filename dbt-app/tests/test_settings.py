"""settings.py is the only reader of the environment, reads only env-contract.json's names, and
refuses a bad environment with one message naming every variable. Also: the Snowflake secret's parser."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import credentials
import pytest
import settings
from support import APP_DIR, SECRET, env_for

APP_MODULES = sorted(p for p in APP_DIR.glob("*.py"))


class Recording(dict):
    """A mapping that records which names were read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, name, default=None):
        self.read.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)


def test_the_app_modules_are_found():
    names = {p.name for p in APP_MODULES}
    assert {"app.py", "web.py", "settings.py", "worker.py", "registry.py", "gunicorn.conf.py"} <= names


@pytest.mark.parametrize("path", APP_MODULES, ids=[p.name for p in APP_MODULES])
def test_only_settings_touches_the_environment(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    touches = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv", "environb"):
            touches.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in ("environ", "getenv") for a in node.names):
            touches.append(f"line {node.lineno}: from os import ...")
    if path.name == "settings.py":
        assert touches, "settings.py reads os.environ"
    else:
        assert touches == [], f"{path.name} touches the environment: {touches}"


def test_settings_reads_only_contract_names():
    env = Recording(env_for(APP_DIR, "dbt"))
    settings.load(env)
    assert env.read <= set(settings.CONTRACT), env.read - set(settings.CONTRACT)
    # and every literal variable name in settings.py is in the contract
    tree = ast.parse((APP_DIR / "settings.py").read_text(encoding="utf-8"))
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.isupper() and "_" in n.value}
    assert literals <= set(settings.CONTRACT), literals - set(settings.CONTRACT)


def test_the_contract_keeps_its_format():
    data = json.loads(settings.CONTRACT_PATH.read_text(encoding="utf-8"))
    for name, spec in data["variables"].items():
        assert set(spec) <= {"from", "required", "default", "description"}, name
        assert spec["from"] in ("deployment", "secret", "webhook", "image"), name
        assert not (spec["from"] == "secret" and "default" in spec), name


def test_defaults_apply():
    env = env_for(APP_DIR, "dbt")
    for name in ("PORT", "DBT_TARGET", "RUN_LOST_AFTER_SECONDS", "DBT_BIN", "DBT_API_READ_TOKEN"):
        env.pop(name)
    s = settings.load(env)
    assert (s.port, s.dbt_target, s.run_lost_after_seconds, s.dbt_bin, s.api_read_token) == (8080, "prod", 60.0, "dbt", None)


def test_every_problem_is_listed_with_value_and_fix_and_secrets_are_not_shown():
    env = env_for(APP_DIR, "dbt", PORT="80a", AWS_REGION="east", DBT_API_TOKEN="short-secret", QUEUE_POLL_SECONDS="-1", RUN_LOST_AFTER_SECONDS="0.5")
    env.pop("DBT_RUNS_TABLE")
    with pytest.raises(settings.SettingsError) as caught:
        settings.load(env)
    message = str(caught.value)
    assert message.startswith("Invalid dbt app environment (6 problems")
    for fragment in (
        'PORT = "80a": is not a TCP port. Fix:',
        'AWS_REGION = "east": is not an AWS region name. Fix: use e.g. us-east-1',
        "DBT_RUNS_TABLE = (not set): is required. Fix:",
        "DBT_API_TOKEN = (12 characters, not shown): is shorter than 16 characters",
        'QUEUE_POLL_SECONDS = "-1"',
        'RUN_LOST_AFTER_SECONDS = "0.5": is not more than twice RUN_HEARTBEAT_SECONDS',
    ):
        assert fragment in message
    assert "short-secret" not in message


def test_app_import_fails_with_one_message_and_gunicorn_config_too():
    for code in ("import app", "exec(open('gunicorn.conf.py').read())"):
        out = subprocess.run([sys.executable, "-c", code], cwd=APP_DIR, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("Invalid dbt app environment (4 problems"), out.stderr
        assert "Traceback" not in out.stderr
        for name in ("DBT_API_TOKEN", "AWS_REGION", "DBT_RUNS_TABLE", "SNOWFLAKE_SECRET_ID"):
            assert f"{name} = (not set): is required" in out.stderr


def test_app_defines_app_when_settings_are_valid(tmp_path):
    code = "import app; print(type(app.app).__name__, sorted(r.rule for r in app.app.url_map.iter_rules() if r.rule != '/static/<path:filename>'))"
    env = env_for(tmp_path, "dbt") | {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    out = subprocess.run([sys.executable, "-c", code], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Flask ['/api/v1/batches/<path:batch_id>/attempts/<path:attempt>', '/api/v1/runs', '/api/v1/runs/<path:run_id>', '/healthz']"


# --- credentials --------------------------------------------------------------------------------


def test_secret_to_dbt_env_with_defaults_and_local_options():
    env = credentials.parse("s", json.dumps(SECRET))
    assert env["SNOWFLAKE_SCHEMA"] == "SEMANTIC" and env["SNOWFLAKE_PASSWORD"] == SECRET["password"]
    assert "SNOWFLAKE_HOST" not in env
    local = credentials.parse("s", json.dumps(SECRET | {"schema": "S2", "host": "localhost", "port": 8085, "protocol": "http"}))
    assert (local["SNOWFLAKE_SCHEMA"], local["SNOWFLAKE_HOST"], local["SNOWFLAKE_PORT"], local["SNOWFLAKE_PROTOCOL"]) == ("S2", "localhost", "8085", "http")


def test_the_other_consumers_keys_of_the_shared_secret_are_accepted_and_not_passed_to_dbt():
    """The Glue connector's sf* keys and the fence writer's private_key share the secret (components/snowflake.ts)."""
    shared = SECRET | {"sfUser": "u", "sfPassword": "p", "sfWarehouse": "w", "sfDatabase": "d", "sfRole": "r", "private_key": "-----BEGIN PRIVATE KEY-----"}
    env = credentials.parse("s", json.dumps(shared))
    assert env["SNOWFLAKE_USER"] == SECRET["user"]
    assert not any(value in ("u", "p", "w", "d", "r") or "PRIVATE KEY" in value for value in env.values())


@pytest.mark.parametrize(
    "secret,fragment",
    [
        ("not json", "is not JSON"),
        ("[1]", "not a JSON object"),
        (json.dumps({k: v for k, v in SECRET.items() if k != "role"}), "role: required"),
        (json.dumps(SECRET | {"pasword": "x"}), "unknown keys: pasword"),
        (json.dumps(SECRET | {"port": "http"}), "port: must be 1..65535"),
        (json.dumps(SECRET | {"protocol": "ftp"}), "protocol: must be http or https"),
    ],
)
def test_bad_secrets_name_keys_not_values(secret, fragment):
    with pytest.raises(credentials.CredentialsError) as caught:
        credentials.parse("etl/snowflake", secret)
    assert fragment in str(caught.value) and "etl/snowflake" in str(caught.value)
    assert SECRET["password"] not in str(caught.value)


def test_the_image_copies_every_app_module_and_uses_the_gunicorn_config():
    dockerfile = (APP_DIR / "Dockerfile").read_text(encoding="utf-8")
    copy = dockerfile[dockerfile.index("COPY app.py") : dockerfile.index("./\n", dockerfile.index("COPY app.py"))]
    for path in APP_MODULES + [APP_DIR / "env-contract.json"]:
        assert path.name in copy, f"{path.name} is not copied into the image"
    assert "tests" not in copy and "fake_dbt" not in dockerfile
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:app"]' in dockerfile
