"""Reference Flask app for the dbt REST contract (docs/dbt-api.md, docs/dbt-api.openapi.yaml).

`app` exists whenever the environment (env-contract.json) is valid; otherwise the import exits with
one message listing every missing or invalid variable. Serve it with the repo's gunicorn config,
which starts the dbt worker thread and handles SIGTERM: gunicorn -c gunicorn.conf.py app:app
"""

import sys

import settings
from web import Runtime, create_app


def load_settings() -> settings.Settings:
    try:
        return settings.load()
    except settings.SettingsError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        raise SystemExit(2) from None


app = create_app(Runtime(load_settings()))
