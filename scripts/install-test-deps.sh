#!/usr/bin/env bash
# Installs the external programs the integration tests run: Prometheus Alertmanager from
# Debian (package prometheus-alertmanager, /usr/bin/prometheus-alertmanager; it also ships
# /usr/bin/amtool, which the import tests compare routing with), and Chromium with its
# WebDriver for the web console's browser tests (packages chromium and chromium-driver,
# /usr/bin/chromium and /usr/bin/chromedriver).
#
# Idempotent: installs only what is missing. Never starts the packaged
# service (scripts/apt-install.sh): the tests start their own Alertmanager on a free
# loopback port, and a system instance would only hold ports 9093/9094 and run for nothing.
set -euo pipefail

AM_BIN=/usr/bin/prometheus-alertmanager
PACKAGE=prometheus-alertmanager
SERVICE=prometheus-alertmanager

CHROMIUM_BIN=/usr/bin/chromium
CHROMEDRIVER_BIN=/usr/bin/chromedriver

if [[ ! -x "$CHROMIUM_BIN" || ! -x "$CHROMEDRIVER_BIN" ]]; then
    bash "$(dirname "$0")/apt-install.sh" chromium chromium-driver
    if [[ ! -x "$CHROMIUM_BIN" || ! -x "$CHROMEDRIVER_BIN" ]]; then
        echo "install-test-deps: chromium installed but $CHROMIUM_BIN or $CHROMEDRIVER_BIN is missing" >&2
        exit 1
    fi
fi
echo "install-test-deps: $("$CHROMEDRIVER_BIN" --version 2>&1 | head -n 1) at $CHROMEDRIVER_BIN"

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
