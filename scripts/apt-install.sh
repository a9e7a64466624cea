#!/usr/bin/env bash
# apt-install.sh PACKAGE...: installs Debian packages for the tests without starting any
# service they bring (Alertmanager, PostgreSQL): the tests start their own instances on
# loopback ports, and a system instance would only hold ports and run for nothing.
#
# Debian maintainer scripts start services through invoke-rc.d / deb-systemd-invoke, which
# both ask /usr/sbin/policy-rc.d first; exit code 101 there means "not allowed", so one is
# put in place for the install and the previous state restored afterwards. Output goes to
# stderr, so callers' stdout stays machine-readable. Needs root, or sudo without a password.
set -euo pipefail

POLICY=/usr/sbin/policy-rc.d
(($# > 0)) || { echo "usage: $0 PACKAGE..." >&2; exit 2; }

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)  # non-interactive: fail fast in CI rather than wait for a password
    else
        echo "apt-install: need root (or sudo) to install $*" >&2
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
printf '#!/bin/sh\n# scripts/apt-install.sh: no service starts during this install\nexit 101\n' \
    | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod 0755 "$POLICY"

echo "apt-install: installing $* (no service is started)" >&2
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
