#!/usr/bin/env bash
# A real Redmine for the redmine connector's integration tests, on a loopback port.
#
#   scripts/redmine.sh          install if needed, prepare, start; prints on stdout:
#                                 REDMINE_URL=http://127.0.0.1:3000
#                                 REDMINE_API_KEY=<an admin API key>
#                                 REDMINE_HUMAN_API_KEY=<key of jdoe, a Manager in ops>
#                                 REDMINE_VERSION=5.0.4.stable
#                                 REDMINE_STARTED=1 (0 when it was running already)
#   scripts/redmine.sh stop     stops the Redmine this script started
#
# Environment: REDMINE_PORT (3000), REDMINE_STATE_DIR (/tmp/baton-redmine: pid file, server
# log, lock), REDMINE_START_TIMEOUT (seconds, 180). Progress goes to stderr, so stdout is
# only the machine-readable lines above.
#
# Debian bookworm's packages (redmine, redmine-sqlite; Redmine 5.0) on their default
# instance: dbconfig-common creates the SQLite database and loads the default data
# (trackers, statuses, priorities, workflows) at install time. The package has no service;
# the server here is WEBrick under www-data (the owner of the instance's files), which
# Ruby 3.1 no longer bundles, hence ruby-webrick and `gem "webrick"` in Gemfile.local.
# `ops` (identifier) is a private project with every tracker; user jdoe (Jane Doe) is a
# Manager there, for tests that act as a person working in Redmine.
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
STARTED=0

say() { echo "redmine.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "needs root (or sudo) to install and run Redmine"
    SUDO=(sudo -n)  # non-interactive: fail fast in CI rather than wait for a password
fi

# /proc rather than `kill -0`: without root, signalling www-data's process is refused.
alive() { [[ "$1" =~ ^[0-9]+$ && -d "/proc/$1" ]]; }

running_pid() {
    local pid
    [[ -s "$PID_FILE" ]] || return 1
    pid=$(cat "$PID_FILE")
    alive "$pid" || return 1
    echo "$pid"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        say "not running"
        "${SUDO[@]}" rm -f "$PID_FILE"
        return 0
    fi
    say "stopping pid $pid"
    "${SUDO[@]}" kill -TERM "$pid"
    for _ in $(seq 1 100); do
        alive "$pid" || { "${SUDO[@]}" rm -f "$PID_FILE"; return 0; }
        sleep 0.1
    done
    say "pid $pid ignored TERM for 10s; killing it"
    "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
    "${SUDO[@]}" rm -f "$PID_FILE"
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
    # default data when missing, REST API on, the admin usable by API key, project `ops`.
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
project = Project.find_by(identifier: "ops")
unless project
  warn "redmine.sh: creating project ops"
  project = Project.new(name: "Ops", identifier: "ops", is_public: false)
  project.enabled_module_names = ["issue_tracking"]
  project.trackers = Tracker.sorted.to_a
  project.save!
end
project.trackers = Tracker.sorted.to_a if project.trackers.empty?
# A second, non-admin person (Manager in ops) for tests that act as a human in Redmine.
human = User.find_by_login("jdoe")
unless human
  human = User.new(firstname: "Jane", lastname: "Doe", mail: "jdoe@example.invalid")
  human.login = "jdoe"
  human.password = human.password_confirmation = SecureRandom.hex(16)
  human.save!
end
unless Member.exists?(user_id: human.id, project_id: project.id)
  Member.create!(principal: human, project: project, roles: [Role.find_by!(name: "Manager")])
end
puts "REDMINE_API_KEY=#{admin.api_key}"
puts "REDMINE_HUMAN_API_KEY=#{human.api_key}"
puts "REDMINE_VERSION=#{Redmine::VERSION}"
RUBY
    "${SUDO[@]}" chmod 0644 "$script"
    as_redmine "$ROOT/bin/rails" runner "$script"
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
            die "Redmine did not answer at $URL within ${START_TIMEOUT}s"
        fi
        sleep 0.5
    done
    say "up at $URL (pid $(running_pid))"
    STARTED=1
}

main() {
    "${SUDO[@]}" mkdir -p "$STATE_DIR"
    "${SUDO[@]}" chown "$RUN_AS" "$STATE_DIR" 2>/dev/null || true
    case "${1:-start}" in
        stop)
            stop
            return 0
            ;;
        start) ;;
        *) die "usage: $0 [start|stop]" ;;
    esac
    # Two test runs at once must not install or start twice. (The server must not
    # inherit fd 9, or it would hold the lock for its whole life.)
    "${SUDO[@]}" touch "$STATE_DIR/lock"
    "${SUDO[@]}" chmod 0666 "$STATE_DIR/lock"
    exec 9>>"$STATE_DIR/lock"
    flock -w 600 9 || die "another redmine.sh holds $STATE_DIR/lock"
    install
    id "$RUN_AS" >/dev/null 2>&1 || die "user $RUN_AS is missing"
    configure_gemfile
    local out
    out=$(prepare) || die "preparing Redmine failed"
    start
    echo "REDMINE_URL=$URL"
    echo "REDMINE_STARTED=$STARTED"  # 1: this run started it (the caller may stop it)
    grep -E '^REDMINE_(API_KEY|HUMAN_API_KEY|VERSION)=' <<<"$out"
}

main "$@"
