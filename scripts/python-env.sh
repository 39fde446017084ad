#!/usr/bin/env bash
# Creates or refreshes the project's virtualenv (.venv) from requirements-dev.lock, the exact,
# hash-checked pins of every Python dependency. A no-op when the lock, this script and the Python
# version are unchanged since the last install (a stamp in .venv records their digest).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
python=${PYTHON:-python3}
stamp="$venv/.installed-from"
digest=$( ("$python" --version; cat requirements-dev.lock scripts/python-bootstrap.lock scripts/python-env.sh) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "python-env: installing requirements-dev.lock into $venv"
start=$(date +%s)
"$python" -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r scripts/python-bootstrap.lock
"$venv/bin/uv" pip sync --quiet --python "$venv/bin/python" --require-hashes requirements-dev.lock
echo "$digest" > "$stamp"
echo "python-env: ready in $(( $(date +%s) - start )) s"
