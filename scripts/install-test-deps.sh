#!/usr/bin/env bash
# Installs the external programs the integration tests run: Prometheus Alertmanager from
# Debian (package prometheus-alertmanager, /usr/bin/prometheus-alertmanager; it also ships
# /usr/bin/amtool, which the import tests compare routing with).
#
# Idempotent: does nothing when the binary is already there. Never starts the packaged
# service (scripts/apt-install.sh): the tests start their own Alertmanager on a free
# loopback port, and a system instance would only hold ports 9093/9094 and run for nothing.
set -euo pipefail

AM_BIN=/usr/bin/prometheus-alertmanager
PACKAGE=prometheus-alertmanager
SERVICE=prometheus-alertmanager

if [[ -x "$AM_BIN" ]]; then
    echo "install-test-deps: $("$AM_BIN" --version 2>&1 | head -n 1) already at $AM_BIN"
    exit 0
fi

bash "$(dirname "$0")/apt-install.sh" "$PACKAGE"

# Belt and braces on systemd hosts: whatever the maintainer scripts did, nothing runs now.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then
        SUDO=()
        [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo -n)
        "${SUDO[@]}" systemctl stop "$SERVICE"
    fi
fi

if [[ ! -x "$AM_BIN" ]]; then
    echo "install-test-deps: $PACKAGE installed but $AM_BIN is missing" >&2
    exit 1
fi
echo "install-test-deps: $("$AM_BIN" --version 2>&1 | head -n 1) at $AM_BIN"
