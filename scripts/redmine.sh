#!/usr/bin/env bash
# A real Redmine for the redmine connector's integration tests, on a loopback port.
#
#   scripts/redmine.sh          install if needed, prepare, start; prints on stdout:
#                                 REDMINE_URL=http://127.0.0.1:3000
#                                 REDMINE_API_KEY=<an admin API key>
#                                 REDMINE_HUMAN_API_KEY=<key of jdoe, a Manager in the project>
#                                 REDMINE_PROJECT=baton-it
#                                 REDMINE_VERSION=5.0.4.stable
#                                 REDMINE_STARTED=1 (0 when it was running already)
#   scripts/redmine.sh stop     this caller is done with Redmine; stops it only if this
#                               caller started it and no other caller still uses it
#
# Who "this caller" is: the process REDMINE_LEASE_PID names (default: the parent, i.e. the
# shell or test run that calls the script), told apart from a later process with the same
# pid by its start time. `start` records the caller as a user of Redmine, and as its owner
# when this call started the server; `stop` drops the caller's use and stops the server
# only when the caller owns it. An owner still in use by other callers (two test runs at
# once) hands it to one of them instead, and the last one stops it. A Redmine running
# before (started by hand, or by a run that died) has another or no owner: it is reused
# and left running; `kill $(cat $STATE_DIR/redmine.pid)` ends one for good.
#
# Environment: REDMINE_PORT (3000), REDMINE_STATE_DIR (/tmp/baton-redmine: pid file, server
# log, lock, owner, users), REDMINE_START_TIMEOUT (seconds, 180), REDMINE_LEASE_PID.
# Progress goes to stderr, so stdout is only the machine-readable lines above.
#
# Debian bookworm's packages (redmine, redmine-sqlite; Redmine 5.0) on their default
# instance: dbconfig-common creates the SQLite database and loads the default data
# (trackers, statuses, priorities, workflows) at install time. The package has no service;
# the server here is WEBrick under www-data (the owner of the instance's files), which
# Ruby 3.1 no longer bundles, hence ruby-webrick and `gem "webrick"` in Gemfile.local.
# `baton-it` (identifier) is the tests' own project, private, with every tracker; user
# jdoe (Jane Doe) is a Manager there, for tests that act as a person working in Redmine.
# Those settings are enforced on every run, whoever made the project: the same Redmine may
# serve other uses (an `ops` project of its own, public or not), which the tests leave alone.
# Idempotent: every step checks first, and a running server that answers is reused.
set -euo pipefail

PORT=${REDMINE_PORT:-3000}
STATE_DIR=${REDMINE_STATE_DIR:-/tmp/baton-redmine}
START_TIMEOUT=${REDMINE_START_TIMEOUT:-180}
ROOT=/usr/share/redmine
RUN_AS=www-data
URL="http://127.0.0.1:${PORT}"
PID_FILE="$STATE_DIR/redmine.pid"
LOG_FILE="$STATE_DIR/redmine.log"
OWNER_FILE="$STATE_DIR/owner"   # the caller that started the running server
USERS_DIR="$STATE_DIR/users"    # one file per caller using it
LEASE_PID=${REDMINE_LEASE_PID:-$PPID}
PROJECT=baton-it
STARTED=0

say() { echo "redmine.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "needs root (or sudo) to install and run Redmine"
    SUDO=(sudo -n)  # non-interactive: fail fast in CI rather than wait for a password
fi

# /proc rather than `kill -0`: without root, signalling www-data's process is refused.
# A zombie (exited, not yet reaped) still has a /proc entry: it is not alive.
alive() { [[ "$1" =~ ^[0-9]+$ && -n "$(proc_start "$1")" ]]; }

# The start time of process $1 (clock ticks since boot; empty when gone or a zombie).
proc_start() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    read -ra fields <<<"${stat##*) }"  # after the command name, which may hold spaces
    [[ "${fields[0]}" != Z ]] && echo "${fields[19]}"
    return 0
}

# A caller as "pid-starttime": unique over time, unlike a pid alone.
lease_of() {
    local start
    start=$(proc_start "$1")
    [[ -n "$start" ]] || die "REDMINE_LEASE_PID=$1 names no running process"
    echo "$1-$start"
}
lease_alive() { [[ "$(proc_start "${1%-*}")" == "${1##*-}" ]]; }

live_users() {
    local f
    for f in "$USERS_DIR"/*; do
        [[ -e "$f" ]] || continue
        if lease_alive "${f##*/}"; then echo "${f##*/}"; else "${SUDO[@]}" rm -f "$f"; fi
    done
}

running_pid() {
    local pid
    [[ -s "$PID_FILE" ]] || return 1
    pid=$(cat "$PID_FILE")
    alive "$pid" || return 1
    echo "$pid"
}

kill_server() {
    local pid=$1
    say "stopping pid $pid"
    "${SUDO[@]}" kill -TERM "$pid"
    for _ in $(seq 1 100); do
        alive "$pid" || { "${SUDO[@]}" rm -f "$PID_FILE" "$OWNER_FILE"; return 0; }
        sleep 0.1
    done
    say "pid $pid ignored TERM for 10s; killing it"
    "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
    "${SUDO[@]}" rm -f "$PID_FILE" "$OWNER_FILE"
}

stop() {
    local me pid owner others
    me=$(lease_of "$LEASE_PID")
    "${SUDO[@]}" rm -f "$USERS_DIR/$me"
    if ! pid=$(running_pid); then
        say "not running"
        "${SUDO[@]}" rm -f "$PID_FILE" "$OWNER_FILE"
        return 0
    fi
    owner=$(cat "$OWNER_FILE" 2>/dev/null || true)
    if [[ "$owner" != "$me" ]]; then
        say "leaving Redmine (pid $pid) running: this caller did not start it"
        return 0
    fi
    others=$(live_users)
    others=${others%%$'\n'*}  # the first one
    if [[ -n "$others" ]]; then
        say "leaving Redmine (pid $pid) running for caller ${others%-*}, which still uses it"
        echo "$others" | "${SUDO[@]}" tee "$OWNER_FILE" >/dev/null
        return 0
    fi
    kill_server "$pid"
}

install() {
    if dpkg-query -W -f='${Status}' redmine-sqlite 2>/dev/null | grep -q "ok installed" \
        && dpkg-query -W -f='${Status}' ruby-webrick 2>/dev/null | grep -q "ok installed"; then
        return 0
    fi
    say "installing redmine, redmine-sqlite, ruby-webrick (Debian packages)"
    # dbconfig-common asks which database to use and whether to set it up; answer before
    # the install so it runs unattended on SQLite with English default data.
    "${SUDO[@]}" debconf-set-selections <<'EOF'
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
EOF
    "${SUDO[@]}" apt-get update -qq
    # Recommends would pull in Passenger and Apache, which nothing here uses.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends redmine redmine-sqlite ruby-webrick >&2
}

configure_gemfile() {
    local local_gemfile="$ROOT/Gemfile.local"  # Redmine's Gemfile evals this one
    if ! grep -qs '^gem "webrick"' "$local_gemfile"; then
        say "adding webrick to $local_gemfile"
        echo 'gem "webrick"' | "${SUDO[@]}" tee -a "$local_gemfile" >/dev/null
    fi
}

as_redmine() {
    (cd "$ROOT" && "${SUDO[@]}" runuser -u "$RUN_AS" -- env RAILS_ENV=production \
        REDMINE_LANG=en "$@")
}

prepare() {
    # One Rails boot for every check (each boot costs seconds): migrate when needed,
    # default data when missing, REST API on, the admin usable by API key, the tests' project.
    local script="$STATE_DIR/prepare.rb"
    "${SUDO[@]}" tee "$script" >/dev/null <<'RUBY'
ctx = ActiveRecord::Base.connection.migration_context
if ctx.needs_migration?
  warn "redmine.sh: migrating the database"
  ctx.migrate
end
if Tracker.none? || IssueStatus.none? || IssuePriority.none?
  warn "redmine.sh: loading the default data"
  Redmine::DefaultData::Loader.load("en")
end
Setting.rest_api_enabled = "1" unless Setting.rest_api_enabled?
admin = User.find_by_login("admin") or abort("redmine.sh: no admin user")
admin.update_columns(must_change_passwd: false) if admin.must_change_passwd?
# The tests' own project, set as they need it whether or not this run made it.
project = Project.find_by(identifier: ENV.fetch("BATON_PROJECT"))
unless project
  warn "redmine.sh: creating project #{ENV.fetch("BATON_PROJECT")}"
  project = Project.new(identifier: ENV.fetch("BATON_PROJECT"))
end
project.name = "Baton integration tests"
project.is_public = false
project.status = Project::STATUS_ACTIVE
project.save! if project.new_record? || project.changed?
unless project.enabled_module_names.include?("issue_tracking")
  project.enabled_module_names = project.enabled_module_names | ["issue_tracking"]
end
project.trackers = Tracker.sorted.to_a if project.tracker_ids.sort != Tracker.ids.sort
# A second, non-admin person (Manager in ops) for tests that act as a human in Redmine.
human = User.find_by_login("jdoe")
unless human
  human = User.new(firstname: "Jane", lastname: "Doe", mail: "jdoe@example.invalid")
  human.login = "jdoe"
  human.password = human.password_confirmation = SecureRandom.hex(16)
  human.save!
end
human.update_columns(status: User::STATUS_ACTIVE) unless human.active?
manager = Role.find_by!(name: "Manager")
member = Member.find_by(user_id: human.id, project_id: project.id)
if member.nil?
  Member.create!(principal: human, project: project, roles: [manager])
elsif !member.role_ids.include?(manager.id)
  member.role_ids = member.role_ids | [manager.id]
  member.save!
end
puts "REDMINE_API_KEY=#{admin.api_key}"
puts "REDMINE_HUMAN_API_KEY=#{human.api_key}"
puts "REDMINE_PROJECT=#{project.identifier}"
puts "REDMINE_VERSION=#{Redmine::VERSION}"
RUBY
    "${SUDO[@]}" chmod 0644 "$script"
    as_redmine BATON_PROJECT="$PROJECT" "$ROOT/bin/rails" runner "$script"
}

answers() {
    # Ruby rather than curl: it is there whenever Redmine is, curl may not be.
    ruby -rnet/http -e '
        begin
          res = Net::HTTP.get_response(URI(ARGV[0] + "/trackers.json"))
          exit(%w[200 401 403].include?(res.code) ? 0 : 1)
        rescue StandardError
          exit 1
        end' "$URL"
}

start() {
    if running_pid >/dev/null && answers; then
        say "already running at $URL (pid $(running_pid))"
        STARTED=0
        return 0
    fi
    if answers; then
        die "something else answers at $URL; set REDMINE_PORT to a free port"
    fi
    "${SUDO[@]}" rm -f "$PID_FILE"
    say "starting WEBrick at $URL (log $LOG_FILE)"
    "${SUDO[@]}" touch "$LOG_FILE"
    "${SUDO[@]}" chown "$RUN_AS" "$LOG_FILE"
    # rackup rather than `rails server`: the latter insists on creating tmp/ under the
    # read-only /usr/share/redmine; the instance's tmp/ is elsewhere. setsid: the server
    # outlives this script and the caller's process group.
    cd "$ROOT"
    "${SUDO[@]}" setsid runuser -u "$RUN_AS" -- env RAILS_ENV=production RACK_ENV=production \
        rackup -s webrick -E production -o 127.0.0.1 -p "$PORT" -P "$PID_FILE" \
        "$ROOT/config.ru" >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
    local launcher=$!
    cd - >/dev/null
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers; do
        if ! alive "$launcher"; then
            tail -n 30 "$LOG_FILE" >&2 || true
            die "Redmine exited during start-up (log above)"
        fi
        if ((SECONDS > deadline)); then
            tail -n 30 "$LOG_FILE" >&2 || true
            local pid
            if pid=$(running_pid); then kill_server "$pid"; fi
            die "Redmine did not answer at $URL within ${START_TIMEOUT}s (stopped it)"
        fi
        sleep 0.5
    done
    say "up at $URL (pid $(running_pid))"
    STARTED=1
}

# Records the caller as a user of the server, and as its owner when it started it.
lease() {
    local me
    me=$(lease_of "$LEASE_PID")
    "${SUDO[@]}" mkdir -p "$USERS_DIR"
    live_users >/dev/null  # forget callers that ended without `stop`
    "${SUDO[@]}" touch "$USERS_DIR/$me"
    if ((STARTED)); then echo "$me" | "${SUDO[@]}" tee "$OWNER_FILE" >/dev/null; fi
}

main() {
    "${SUDO[@]}" mkdir -p "$STATE_DIR"
    "${SUDO[@]}" chown "$RUN_AS" "$STATE_DIR" 2>/dev/null || true
    case "${1:-start}" in
        start | stop) ;;
        *) die "usage: $0 [start|stop]" ;;
    esac
    # Two test runs at once must not install or start twice, nor stop while the other
    # starts. (The server must not inherit fd 9, or it would hold the lock for its life.)
    "${SUDO[@]}" touch "$STATE_DIR/lock"
    "${SUDO[@]}" chmod 0666 "$STATE_DIR/lock"
    exec 9>>"$STATE_DIR/lock"
    flock -w 600 9 || die "another redmine.sh holds $STATE_DIR/lock"
    if [[ "${1:-start}" == stop ]]; then
        stop
        return 0
    fi
    install
    id "$RUN_AS" >/dev/null 2>&1 || die "user $RUN_AS is missing"
    configure_gemfile
    local out
    out=$(prepare) || die "preparing Redmine failed"
    start
    lease
    echo "REDMINE_URL=$URL"
    echo "REDMINE_STARTED=$STARTED"  # 1: this call started it; `stop` will stop it
    grep -E '^REDMINE_(API_KEY|HUMAN_API_KEY|PROJECT|VERSION)=' <<<"$out"
}

main "$@"
