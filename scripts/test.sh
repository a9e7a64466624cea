#!/usr/bin/env bash
# Set up and run Baton's whole test suite on a fresh machine with Python 3.11+.
# Installs the package the way the Docker image does (a regular, non-editable install)
# plus the test extras, and the real Prometheus Alertmanager the integration tests run
# against (Debian package; needs root or sudo the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
bash scripts/install-test-deps.sh
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[test]"
# A stale checkout-local build dir would shadow nothing (tests import the installed
# package), but remove it so the install above is the one tested.
rm -rf build
"$VENV/bin/ruff" check src connectors tests bench
"$VENV/bin/mypy"
# pytest exits 5 when it collected no test: that is a failure here, like any non-zero.
exec "$VENV/bin/pytest" -q "$@"
