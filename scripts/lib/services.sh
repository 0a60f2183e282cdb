# shellcheck shell=bash
# PostgreSQL and Redis for the test suite; sourced by scripts/test.sh, which runs with `set -euo pipefail`.
#
#   ensure_postgres   exports HIVEWATCH_TEST_DATABASE_URL and HIVEWATCH_TEST_PG_BIN
#   ensure_redis      exports HIVEWATCH_TEST_REDIS_URL and HIVEWATCH_TEST_REDIS_SERVER
#   ensure_prometheus makes sure promtool, prometheus and amtool are on PATH (no service is started)
#
# Each picks, in this order: the URL already set in the environment; the local service on its default
# port (PostgreSQL on 127.0.0.1:5432 as user postgres, Redis on 127.0.0.1:6379); a throwaway instance on a
# free port in a temp dir, stopped and removed when the script exits, whatever the tests did.
# HIVEWATCH_TEST_FORCE_THROWAWAY=1 skips the local services and always starts throwaway instances.
#
# The server binaries are needed in every case, since some tests start (and crash) their own instances:
# HIVEWATCH_TEST_PG_BIN is the directory holding initdb and pg_ctl, HIVEWATCH_TEST_REDIS_SERVER the
# redis-server executable; both may be set beforehand. When they are missing, Debian's packages are
# installed if the script runs as root; otherwise it prints the apt-get command to run and exits 1.
#
# initdb refuses to run as root, so as root the PostgreSQL cluster belongs to the `postgres` user.

SVC_CLEANUP=()
SVC_TRAP_SET=""

svc_say() {
    echo "services: $*" >&2
}

svc_fail() {
    svc_say "$*"
    exit 1
}

svc_is_root() {
    [[ "$(id -u)" -eq 0 ]]
}

svc_throwaway_forced() {
    [[ "${HIVEWATCH_TEST_FORCE_THROWAWAY:-}" == 1 ]]
}

# svc_on_exit CMD: CMD (a string for eval) runs when the script exits; the last registered runs first.
svc_on_exit() {
    if [[ -z "$SVC_TRAP_SET" ]]; then
        trap svc_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        SVC_TRAP_SET=1
    fi
    SVC_CLEANUP+=("$1")
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
svc_cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#SVC_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${SVC_CLEANUP[i]}" || true
    done
    exit "$rc"
}

# The URL with any password replaced by nothing, for printing.
svc_redact() {
    sed -E -e 's#^([a-z+]+://[^:/@]*):[^@/]*@#\1@#' -e 's#^([a-z+]+://)@#\1#' <<<"$1"
}

# svc_port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
svc_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port on 127.0.0.1 nobody listens on, below Linux's ephemeral range so that outgoing connections
# do not take it in the meantime.
svc_free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 12000))
        if ! svc_port_open "$port"; then
            echo "$port"
            return 0
        fi
    done
    svc_fail "no free TCP port found on 127.0.0.1"
}

# svc_temp_dir [OWNER]: a new temp dir (owned by OWNER when given), falling back to /tmp when OWNER
# cannot get into the one under $TMPDIR.
svc_temp_dir() {
    local owner="${1:-}" dir
    dir="$(mktemp -d)"
    if [[ -n "$owner" ]]; then
        chown "$owner:" "$dir"
        if ! runuser -u "$owner" -- test -w "$dir" 2>/dev/null; then
            rm -rf "$dir"
            dir="$(mktemp -d -p /tmp)"
            chown "$owner:" "$dir"
        fi
    fi
    echo "$dir"
}

# --- binaries and packages ---------------------------------------------------------------------------

# The PostgreSQL bin dir holding initdb and pg_ctl, or nothing.
svc_find_pg_bin() {
    local dir
    if [[ -n "${HIVEWATCH_TEST_PG_BIN:-}" ]]; then
        echo "$HIVEWATCH_TEST_PG_BIN"
        return 0
    fi
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$dir" || ! -x "$dir/initdb" ]] && command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
    fi
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
    fi
}

svc_find_redis_server() {
    if [[ -n "${HIVEWATCH_TEST_REDIS_SERVER:-}" ]]; then
        echo "$HIVEWATCH_TEST_REDIS_SERVER"
        return 0
    fi
    command -v redis-server 2>/dev/null || true
}

# Finds both servers' binaries, installing the missing Debian packages (in one apt-get run) when root;
# otherwise prints the command that installs them and exits 1. Exports HIVEWATCH_TEST_PG_BIN and
# HIVEWATCH_TEST_REDIS_SERVER.
svc_require_binaries() {
    local pg_bin redis_server missing=()
    if [[ -n "${HIVEWATCH_TEST_PG_BIN:-}" && ! -x "$HIVEWATCH_TEST_PG_BIN/initdb" ]]; then
        svc_fail "HIVEWATCH_TEST_PG_BIN=$HIVEWATCH_TEST_PG_BIN holds no initdb; point it at PostgreSQL's bin directory or unset it"
    fi
    if [[ -n "${HIVEWATCH_TEST_REDIS_SERVER:-}" && ! -x "$HIVEWATCH_TEST_REDIS_SERVER" ]]; then
        svc_fail "HIVEWATCH_TEST_REDIS_SERVER=$HIVEWATCH_TEST_REDIS_SERVER is not an executable; point it at redis-server or unset it"
    fi
    pg_bin="$(svc_find_pg_bin)"
    redis_server="$(svc_find_redis_server)"
    [[ -n "$pg_bin" ]] || missing+=(postgresql)
    [[ -n "$redis_server" ]] || missing+=(redis-server)
    if ((${#missing[@]} > 0)); then
        if ! svc_is_root || ! command -v apt-get >/dev/null 2>&1; then
            svc_say "the tests need the PostgreSQL and Redis servers; missing: ${missing[*]}"
            svc_say "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
            svc_fail "(or set HIVEWATCH_TEST_PG_BIN to the directory holding initdb and pg_ctl, HIVEWATCH_TEST_REDIS_SERVER to redis-server)"
        fi
        svc_say "installing ${missing[*]} (apt-get)"
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
        pg_bin="$(svc_find_pg_bin)"
        redis_server="$(svc_find_redis_server)"
        [[ -n "$pg_bin" ]] || svc_fail "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin"
        [[ -n "$redis_server" ]] || svc_fail "installed redis-server but found no redis-server on PATH"
    fi
    export HIVEWATCH_TEST_PG_BIN="$pg_bin"
    export HIVEWATCH_TEST_REDIS_SERVER="$redis_server"
}

# --- PostgreSQL --------------------------------------------------------------------------------------

# svc_pg_run DIR CMD...: runs a PostgreSQL tool in DIR, as the postgres user when root.
svc_pg_run() {
    local dir="$1"
    shift
    if svc_is_root; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

svc_pg_ready() {
    local port="$1"
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p "$port" -t 2
    elif [[ -x "$HIVEWATCH_TEST_PG_BIN/pg_isready" ]]; then
        "$HIVEWATCH_TEST_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2
    else
        svc_port_open "$port"
    fi
}

# True unless psql is at hand and cannot log in with URL (a password is asked, say).
svc_pg_login_ok() {
    command -v psql >/dev/null 2>&1 || return 0
    PGCONNECT_TIMEOUT=5 psql -w -X -q -At -d "$1" -c 'SELECT 1' >/dev/null 2>&1
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
svc_stop_postgres() {
    local dir="$1" pid
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        svc_pg_run "$dir" "$HIVEWATCH_TEST_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            svc_pg_run "$dir" "$HIVEWATCH_TEST_PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            true
    fi
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        pid="$(head -n 1 "$dir/data/postmaster.pid")"
        if [[ "$pid" =~ ^[0-9]+$ ]]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

svc_start_throwaway_postgres() {
    local dir owner="" port attempt i
    svc_is_root && owner=postgres
    dir="$(svc_temp_dir "$owner")"
    svc_on_exit "svc_stop_postgres $(printf %q "$dir")"
    if ! svc_pg_run "$dir" "$HIVEWATCH_TEST_PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        svc_fail "initdb failed (above)"
    fi
    for ((attempt = 1; attempt <= 5; attempt++)); do
        port="$(svc_free_port)"
        # Later lines win in postgresql.conf, so a retry on another port just appends again.
        svc_pg_run "$dir" tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
EOF
        if svc_pg_run "$dir" "$HIVEWATCH_TEST_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
            >/dev/null 2>&1; then
            for ((i = 0; i < 300; i++)); do
                if svc_pg_ready "$port"; then
                    export HIVEWATCH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
                    svc_say "PostgreSQL for the tests: $HIVEWATCH_TEST_DATABASE_URL (throwaway, in $dir, removed on exit)"
                    return 0
                fi
                sleep 0.1
            done
            tail -n 40 "$dir/postgres.log" >&2 || true
            svc_fail "the throwaway PostgreSQL on port $port did not accept connections within 30 s (log above)"
        fi
        if ! grep -q 'could not bind\|could not create any TCP/IP sockets' "$dir/postgres.log" 2>/dev/null; then
            break
        fi
        svc_say "port $port was taken; trying another"
    done
    tail -n 40 "$dir/postgres.log" >&2 || true
    svc_fail "the throwaway PostgreSQL did not start (log above)"
}

# Sets HIVEWATCH_TEST_DATABASE_URL (and HIVEWATCH_TEST_PG_BIN); see the top of this file.
ensure_postgres() {
    local local_url="postgres://postgres@127.0.0.1:5432/postgres"
    svc_require_binaries
    if [[ -n "${HIVEWATCH_TEST_DATABASE_URL:-}" ]]; then
        svc_say "PostgreSQL for the tests: $(svc_redact "$HIVEWATCH_TEST_DATABASE_URL") (from HIVEWATCH_TEST_DATABASE_URL)"
        return 0
    fi
    if ! svc_throwaway_forced && svc_pg_ready 5432; then
        if svc_pg_login_ok "$local_url"; then
            export HIVEWATCH_TEST_DATABASE_URL="$local_url"
            svc_say "PostgreSQL for the tests: $local_url (local, already running)"
            return 0
        fi
        svc_say "PostgreSQL on 127.0.0.1:5432 does not let $local_url in without a password;" \
            "starting a throwaway one (set HIVEWATCH_TEST_DATABASE_URL to use the local one)"
    fi
    svc_start_throwaway_postgres
}

# --- Redis -------------------------------------------------------------------------------------------

# svc_redis_ping PORT: true when 127.0.0.1:PORT answers PING with PONG.
svc_redis_ping() {
    local reply=""
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'PING\r\n' >&3
        IFS= read -r -t 2 reply <&3 || exit 1
        [[ "$reply" == "+PONG"* ]]
    ) 2>/dev/null
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
svc_stop_redis() {
    local dir="$1" pid i
    if [[ -f "$dir/redis.pid" ]]; then
        pid="$(head -n 1 "$dir/redis.pid")"
        if [[ "$pid" =~ ^[0-9]+$ ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

svc_start_throwaway_redis() {
    local dir port attempt i
    dir="$(svc_temp_dir)"
    svc_on_exit "svc_stop_redis $(printf %q "$dir")"
    for ((attempt = 1; attempt <= 5; attempt++)); do
        port="$(svc_free_port)"
        : >"$dir/redis.log"
        if ! "$HIVEWATCH_TEST_REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"; then
            tail -n 40 "$dir/redis.log" >&2 || true
            svc_fail "redis-server did not start (log above)"
        fi
        # The daemon binds after forking: wait for PONG, or for the log to say why it gave up.
        for ((i = 0; i < 300; i++)); do
            if svc_redis_ping "$port"; then
                export HIVEWATCH_TEST_REDIS_URL="redis://127.0.0.1:$port"
                svc_say "Redis for the tests: $HIVEWATCH_TEST_REDIS_URL (throwaway, in $dir, removed on exit)"
                return 0
            fi
            if grep -q 'Could not create server TCP listening socket' "$dir/redis.log" 2>/dev/null; then
                break
            fi
            sleep 0.1
        done
        if ! grep -q 'Could not create server TCP listening socket' "$dir/redis.log" 2>/dev/null; then
            break
        fi
        svc_say "port $port was taken; trying another"
    done
    tail -n 40 "$dir/redis.log" >&2 || true
    svc_fail "the throwaway Redis did not answer PING within 30 s (log above)"
}

# Sets HIVEWATCH_TEST_REDIS_URL (and HIVEWATCH_TEST_REDIS_SERVER); see the top of this file.
ensure_redis() {
    local local_url="redis://127.0.0.1:6379"
    svc_require_binaries
    if [[ -n "${HIVEWATCH_TEST_REDIS_URL:-}" ]]; then
        svc_say "Redis for the tests: $(svc_redact "$HIVEWATCH_TEST_REDIS_URL") (from HIVEWATCH_TEST_REDIS_URL)"
        return 0
    fi
    if ! svc_throwaway_forced && svc_port_open 6379; then
        if svc_redis_ping 6379; then
            export HIVEWATCH_TEST_REDIS_URL="$local_url"
            svc_say "Redis for the tests: $local_url (local, already running)"
            return 0
        fi
        svc_say "something listens on 127.0.0.1:6379 but does not answer PING with PONG;" \
            "starting a throwaway Redis (set HIVEWATCH_TEST_REDIS_URL to use the local one)"
    fi
    svc_start_throwaway_redis
}

# --- Prometheus tools --------------------------------------------------------------------------------

# Listening sockets of Prometheus or Alertmanager processes, as `ss -ltnp` lines (nothing when none). Debian runs
# Alertmanager as prometheus-alertmanager, which ss shows cut to 15 characters.
svc_prometheus_listeners() {
    ss -ltnpH 2>/dev/null | grep -E '"(prometheus|alertmanager|prometheus-al[a-z-]*)",' || true
}

# Makes sure promtool, prometheus and amtool are on PATH (tests/observability_config.rs checks the alert
# rules with them and runs a real Prometheus against hivewatch). When one is missing, Debian's prometheus
# and prometheus-alertmanager packages are installed if the script runs as root; otherwise it prints the
# apt-get command to run and exits 1. The packages' own services are not left running: a policy-rc.d keeps
# their postinst from starting them (one is put in place for the install when the machine has none), and
# any that started all the same are stopped and disabled.
ensure_prometheus() {
    local missing=() policy=/usr/sbin/policy-rc.d own_policy="" rc=0 unit before after
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
        missing+=(prometheus)
    fi
    command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
    if ((${#missing[@]} == 0)); then
        svc_say "Prometheus tools for the tests: $(command -v prometheus), $(command -v promtool), $(command -v amtool)"
        return 0
    fi
    if ! svc_is_root || ! command -v apt-get >/dev/null 2>&1; then
        svc_say "the tests need promtool, prometheus and amtool; missing package(s): ${missing[*]}"
        svc_fail "install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    svc_say "installing ${missing[*]} (apt-get); their services are not started"
    before="$(svc_prometheus_listeners)"
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# put here by hivewatch scripts/lib/services.sh for one apt-get run\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    apt-get update >&2 || rc=$?
    if ((rc == 0)); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 || rc=$?
    fi
    [[ -z "$own_policy" ]] || rm -f "$policy"
    ((rc == 0)) || svc_fail "apt-get failed (exit $rc) installing ${missing[*]}"
    # Nothing just installed may keep running or hold 9090/9093 (should the policy have been bypassed).
    for unit in "${missing[@]}"; do
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
            systemctl stop "$unit" >/dev/null 2>&1 || true
            systemctl disable "$unit" >/dev/null 2>&1 || true
        elif [[ -x "/etc/init.d/$unit" ]]; then
            "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
        fi
    done
    after="$(svc_prometheus_listeners)"
    [[ "$after" == "$before" ]] || svc_fail "the installed Prometheus services still listen: $after"
    for unit in prometheus promtool amtool; do
        command -v "$unit" >/dev/null 2>&1 || svc_fail "installed ${missing[*]} but found no $unit on PATH"
    done
    svc_say "Prometheus tools for the tests: $(command -v prometheus), $(command -v promtool), $(command -v amtool)"
}
