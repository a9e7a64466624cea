#!/usr/bin/env bash
# Installs the external programs the integration tests run: Prometheus Alertmanager from
# Debian (package prometheus-alertmanager, /usr/bin/prometheus-alertmanager).
#
# Idempotent: does nothing when the binary is already there. Never starts the packaged
# service: the tests start their own Alertmanager on a free loopback port, and a system
# instance would only hold ports 9093/9094 and run for nothing. Debian maintainer scripts
# start services through invoke-rc.d / deb-systemd-invoke, which both ask
# /usr/sbin/policy-rc.d first; exit code 101 there means "not allowed", so one is put in
# place for the install and the previous state restored afterwards.
set -euo pipefail

AM_BIN=/usr/bin/prometheus-alertmanager
PACKAGE=prometheus-alertmanager
SERVICE=prometheus-alertmanager
POLICY=/usr/sbin/policy-rc.d

if [[ -x "$AM_BIN" ]]; then
    echo "install-test-deps: $("$AM_BIN" --version 2>&1 | head -n 1) already at $AM_BIN"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)  # non-interactive: fail fast in CI rather than wait for a password
    else
        echo "install-test-deps: need root (or sudo) to install $PACKAGE" >&2
        exit 1
    fi
fi

BACKUP=""
restore_policy() {
    if [[ -n "$BACKUP" ]]; then
        "${SUDO[@]}" mv -f "$BACKUP" "$POLICY"
    else
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}

if [[ -e "$POLICY" ]]; then
    BACKUP="$(mktemp)"
    "${SUDO[@]}" cp -p "$POLICY" "$BACKUP"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# install-test-deps: no service starts during this install\nexit 101\n' \
    | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod 0755 "$POLICY"

echo "install-test-deps: installing $PACKAGE (its service is not started)"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PACKAGE"

# Belt and braces on systemd hosts: whatever the maintainer scripts did, nothing runs now.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then
        "${SUDO[@]}" systemctl stop "$SERVICE"
    fi
fi

if [[ ! -x "$AM_BIN" ]]; then
    echo "install-test-deps: $PACKAGE installed but $AM_BIN is missing" >&2
    exit 1
fi
echo "install-test-deps: $("$AM_BIN" --version 2>&1 | head -n 1) at $AM_BIN"
