#!/usr/bin/env bash
# A PostgreSQL for the tests of the PostgreSQL storage engine (tests/integration/pg.py).
#
#   scripts/postgres.sh [start]    prints on stdout:
#                                    BATON_TEST_POSTGRES_URL=<the URL the tests should use>
#                                    BATON_TEST_POSTGRES_DIR=<the cluster it started, or empty>
#   scripts/postgres.sh stop DIR   stops the cluster it started in DIR and deletes DIR
#
# When a PostgreSQL answers at $BATON_TEST_POSTGRES_URL (default, as in pg.py:
# postgresql://postgres@127.0.0.1:5432/test) it is used as it is: nothing is installed,
# started or changed, and the DIR line is empty. Only when none answers, it installs
# Debian's `postgresql` if needed (its service is not started, see scripts/apt-install.sh),
# and starts a throwaway cluster: a temporary directory holding the data, the log and the
# unix socket; trust authentication; the URL's user as superuser and its database created;
# listening on 127.0.0.1 only, on a free port, which the printed URL names. Not the URL's
# own port: a second run at the same time would find this run's cluster answering there,
# use it, and lose it when this run ends. `stop` deletes only a directory this script
# made (it carries a marker file), so it can never stop a server it did not start.
#
# Root cannot run postgres: as root the cluster belongs to the `postgres` user the package
# creates; otherwise to the calling user. Progress goes to stderr. Environment:
# POSTGRES_START_TIMEOUT (seconds, 60).
set -euo pipefail

DEFAULT_URL=postgresql://postgres@127.0.0.1:5432/test
URL=${BATON_TEST_POSTGRES_URL:-$DEFAULT_URL}
START_TIMEOUT=${POSTGRES_START_TIMEOUT:-60}
MARKER=.baton-test-cluster
HERE=$(cd "$(dirname "$0")" && pwd)

say() { echo "postgres.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# URL parsing and probing in Python: it is there (the tests need it), and it speaks the
# protocol, so "answers" means a PostgreSQL answers, not merely that a port is open.
url_tool() {
    python3 - "$@" <<'PY'
import socket, struct, sys
from urllib.parse import urlsplit, urlunsplit

mode, url = sys.argv[1], sys.argv[2]
u = urlsplit(url)
host, port = u.hostname or "127.0.0.1", u.port or 5432
if mode == "answers":
    # SSLRequest: any PostgreSQL replies with one byte, S or N, before authentication.
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.settimeout(5)
            s.sendall(struct.pack("!ii", 8, 80877103))
            sys.exit(0 if s.recv(1) in (b"S", b"N") else 1)
    except OSError:
        sys.exit(1)
if mode == "plan":  # user, database, a free port, and the URL that reaches them
    user, db = u.username or "postgres", u.path.lstrip("/") or "test"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(user, db, port, urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", f"/{db}",
                                      u.query, "")))
    sys.exit(0)
sys.exit(f"unknown mode {mode}")
PY
}

# The Debian binaries (not on PATH): the newest installed major version.
pg_bin() {
    local d
    d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | sort -V | tail -n 1)
    [[ -n "$d" ]] && dirname "$d"
}

OWNER=()  # how to run the cluster's programs: as postgres when root, else as ourselves
# From /: postgres may not enter the caller's directory.
as_owner() { (cd / && "${OWNER[@]}" "$@"); }

# A zombie (exited, not yet reaped) still has a /proc entry; it is not running.
alive() { [[ -r "/proc/$1/stat" && "$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

# Postmasters on DIR's data: the one its pid file names, and one still starting up
# (pg_ctl gave up waiting before it wrote the pid file), found by that unique path.
postmasters() {
    local dir=$1
    {
        [[ -s "$dir/data/postmaster.pid" ]] && head -n 1 "$dir/data/postmaster.pid"
        pgrep -f -- "/bin/postgres -D $dir/data\b" || true
    } | sort -u | while read -r pid; do alive "$pid" && echo "$pid"; done
}

stop_cluster() {
    local dir=$1 pids
    [[ -f "$dir/$MARKER" ]] || die "$dir was not made by this script; not touching it"
    pids=$(postmasters "$dir")
    if [[ -n "$pids" && -s "$dir/data/postmaster.pid" ]]; then
        local bin
        bin=$(pg_bin) || die "no PostgreSQL binaries, yet $dir has a running cluster"
        [[ "$(stat -c %U "$dir/data")" == "$(id -un)" ]] || OWNER=(runuser -u postgres --)
        say "stopping the cluster in $dir (pid $pids)"
        # immediate: the data is thrown away next, nothing to flush.
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null \
            || say "pg_ctl could not stop it"
        pids=$(postmasters "$dir")
    fi
    if [[ -n "$pids" ]]; then
        say "killing pid $pids"
        # shellcheck disable=SC2086  # one pid a word
        kill -KILL $pids 2>/dev/null || true
        for _ in $(seq 1 50); do [[ -z "$(postmasters "$dir")" ]] && break; sleep 0.1; done
    fi
    rm -rf -- "$dir"
    say "removed $dir"
}

start() {
    if url_tool answers "$URL"; then
        say "a PostgreSQL answers at $URL; using it as it is"
        echo "BATON_TEST_POSTGRES_URL=$URL"
        echo "BATON_TEST_POSTGRES_DIR="
        return 0
    fi
    say "no PostgreSQL answers at $URL; starting a throwaway cluster"
    local bin
    if ! bin=$(pg_bin); then
        bash "$HERE/apt-install.sh" postgresql
        bin=$(pg_bin) || die "postgresql installed, but no /usr/lib/postgresql/*/bin/initdb"
    fi
    local user db port url
    read -r user db port url < <(url_tool plan "$URL") || true
    [[ -n "${url:-}" ]] || die "cannot make sense of $URL"
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/baton-pg.XXXXXX")
    echo "made by scripts/postgres.sh (pid $$); 'scripts/postgres.sh stop $DIR' removes it" \
        >"$DIR/$MARKER"
    trap 'say "start failed; cleaning up"; stop_cluster "$DIR"' EXIT
    if [[ "$(id -u)" -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "user postgres is missing (Debian's package makes it)"
        chown postgres: "$DIR"
        OWNER=(runuser -u postgres --)
    fi
    # -N and fsync=off: a throwaway cluster, nothing to keep through an OS crash.
    as_owner "$bin/initdb" -D "$DIR/data" -U "$user" --auth=trust -E UTF8 --no-locale -N \
        >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    as_owner tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if ! as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w \
            -t "$START_TIMEOUT" start >/dev/null; then
        tail -n 30 "$DIR/postgres.log" >&2 || true
        die "PostgreSQL did not start within ${START_TIMEOUT}s (log above)"
    fi
    if [[ "$db" != postgres ]]; then
        as_owner "$bin/createdb" -h "$DIR" -p "$port" -U "$user" "$db" >&2
    fi
    url_tool answers "$url" || die "the cluster started but does not answer at $url"
    trap - EXIT
    say "$("$bin/postgres" --version) at $url (data in $DIR)"
    echo "BATON_TEST_POSTGRES_URL=$url"
    echo "BATON_TEST_POSTGRES_DIR=$DIR"
}

# A signal ends the script through its EXIT trap (bash skips that trap on an untrapped one).
trap 'exit 130' INT
trap 'exit 143' TERM
case "${1:-start}" in
    start) start ;;
    stop)
        [[ -n "${2:-}" ]] || die "usage: $0 stop DIR (the BATON_TEST_POSTGRES_DIR it printed)"
        stop_cluster "$2"
        ;;
    *) die "usage: $0 [start|stop DIR]" ;;
esac
