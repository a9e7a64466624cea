#!/usr/bin/env bash
# Set up and run Baton's whole test suite on a fresh machine with Python 3.11+.
# Installs the package the way the Docker image does (a regular, non-editable install)
# plus the test extras, and the real programs the integration tests run against:
# Prometheus Alertmanager, Redmine and, when none answers, PostgreSQL (Debian packages;
# needs root or sudo the first time). It stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Whatever this run started is stopped when it ends, pass, fail or interrupt; nothing
# else is. (bash runs the EXIT trap on a signal only when the signal has a trap.)
PG_DIR=""
REDMINE_LEASE_PID=$$
export REDMINE_LEASE_PID
cleanup() {
    if [[ -n "$PG_DIR" ]]; then bash scripts/postgres.sh stop "$PG_DIR" || true; fi
    # Releases this run's hold on Redmine; stops it only if this run started it and no
    # other run still uses it (see scripts/redmine.sh).
    bash scripts/redmine.sh stop >/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/install-test-deps.sh
# A real Redmine (Debian's package) on 127.0.0.1:3000 for tests/integration/test_redmine_live.py;
# the tests find it through these variables. The run fails if it cannot start.
REDMINE_ENV="$(bash scripts/redmine.sh)"
while IFS= read -r kv; do export "${kv?}"; done \
    < <(grep -E '^REDMINE_(URL|API_KEY|HUMAN_API_KEY|PROJECT)=' <<<"$REDMINE_ENV")
# PostgreSQL for the storage engine's tests: the one at $BATON_TEST_POSTGRES_URL when it
# answers, else a throwaway cluster of this run's own.
PG_ENV="$(bash scripts/postgres.sh)"
PG_DIR=$(sed -n 's/^BATON_TEST_POSTGRES_DIR=//p' <<<"$PG_ENV")
BATON_TEST_POSTGRES_URL=$(sed -n 's/^BATON_TEST_POSTGRES_URL=//p' <<<"$PG_ENV")
export BATON_TEST_POSTGRES_URL
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[test]"
# A stale checkout-local build dir would shadow nothing (tests import the installed
# package), but remove it so the install above is the one tested.
rm -rf build
"$VENV/bin/ruff" check src connectors tests bench
"$VENV/bin/mypy"
# pytest exits 5 when it collected no test: that is a failure here, like any non-zero.
# Not exec: the trap above stops what this run started; pytest's exit code is the script's.
"$VENV/bin/pytest" -q "$@"
