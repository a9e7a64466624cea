#!/usr/bin/env bash
# Set up and run Baton's whole test suite on a fresh machine with Python 3.11+.
# Installs the package the way the Docker image does (a regular, non-editable install)
# plus the test extras, and the real Prometheus Alertmanager and Redmine the integration
# tests run against (Debian packages; needs root or sudo the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
bash scripts/install-test-deps.sh
# A real Redmine (Debian's package) on 127.0.0.1:3000 for tests/integration/test_redmine_live.py;
# the tests find it through these variables. The run fails if it cannot start.
REDMINE_ENV="$(bash scripts/redmine.sh)"
while IFS= read -r kv; do export "${kv?}"; done \
    < <(grep -E '^REDMINE_(URL|API_KEY|HUMAN_API_KEY)=' <<<"$REDMINE_ENV")
trap 'bash scripts/redmine.sh stop >/dev/null 2>&1 || true' EXIT
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[test]"
# A stale checkout-local build dir would shadow nothing (tests import the installed
# package), but remove it so the install above is the one tested.
rm -rf build
"$VENV/bin/ruff" check src connectors tests bench
"$VENV/bin/mypy"
# pytest exits 5 when it collected no test: that is a failure here, like any non-zero.
# Not exec: the trap above stops Redmine afterwards; pytest's exit code is the script's.
"$VENV/bin/pytest" -q "$@"
