#!/usr/bin/env bash
# Benchmarks hivewatch on Postgres, alone and with the Redis stream, with hivewatch-load.
#
# Builds both binaries in release mode, then for every run: recreates a fresh database hw_bench_<timestamp> on
# the Postgres server of BENCH_DATABASE_URL (and empties the stream key on BENCH_REDIS_URL), starts
# `hivewatch serve --database-url …` on ephemeral loopback ports (with `--redis-url` for the pgr runs), drives it
# with hivewatch-load, and stops it with SIGTERM. The database and the stream key are dropped at exit.
#
# Environment (all optional):
#   HIVEWATCH_BIN        server binary to use; when set, only the load tool is built
#   HIVEWATCH_LOAD_BIN   load tool binary; when both are set, nothing is built
#   SCENARIOS            space-separated subset of "pg-b pg-c pgr-b pgr-c lag" (default: all)
#   BENCH_DATABASE_URL   admin URL for CREATE/DROP DATABASE through psql; the server gets the same URL with the
#                        bench database's name (default postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_REDIS_URL      Redis for the pgr runs (default redis://127.0.0.1:6379)
#   BENCH_STREAM_MAXLEN  the server's --redis-stream-maxlen (default 100000000: large enough that nothing
#                        written during a run is trimmed before it is counted)
#   BENCH_SERVER_LOG     HIVEWATCH_LOG for the server (default hivewatch=debug, which logs every commit)
#   SERVE_EXTRA_ARGS     extra flags for every `hivewatch serve` (e.g. "--max-batch-events 1000")
#   LOAD_EXTRA_ARGS      extra flags appended to every load run (later flags win, e.g.
#                        "--duration 2 --warmup 1" for a smoke run)
#
# Scenarios:
#   pg-b   Postgres only, OTLP/HTTP logs, batch 100, concurrency 8 and 32, 10 s
#   pg-c   Postgres only, batch 10, open loop at 1,000 events/s, concurrency 32, 20 s
#   pgr-b  pg-b with the Redis stream
#   pgr-c  pg-c with the Redis stream
#   lag    after each pgr run, the stream's lag behind the commits (`hivewatch-load stream-lag`) and a check
#          that the stream holds one entry per row of agent_events; alone it runs pgr-c
#
# Each run prints, tagged with its label: the load tool's `RESULT {json}`, the stream's `RESULT {json}` (mode
# stream-lag), `ROWS` (rows in agent_events; WAL bytes per row and checkpoints during the load, both counted over
# the whole Postgres server), `CPU` (CPU time of hivewatch, of all postgres processes, of
# redis-server and of everything else, as % of one core over the load run), `COMMITS` (from the server's debug
# log: commits, mean events and requests per commit, commit_us mean/p50/p99 and the share of the run the
# committer spent committing) and `RSS` (kB). A summary at the end repeats them.
set -euo pipefail

# shellcheck source=lib/server.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCENARIOS="${SCENARIOS:-pg-b pg-c pgr-b pgr-c lag}"
BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BENCH_REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
BENCH_STREAM_MAXLEN="${BENCH_STREAM_MAXLEN:-100000000}"
BENCH_SERVER_LOG="${BENCH_SERVER_LOG:-hivewatch=debug}"
LOAD_EXTRA_ARGS="${LOAD_EXTRA_ARGS:-}"
SERVE_EXTRA_ARGS="${SERVE_EXTRA_ARGS:-}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

WANT_LAG=false
for s in $SCENARIOS; do
    case "$s" in
        pg-b | pg-c | pgr-b | pgr-c) ;;
        lag) WANT_LAG=true ;;
        *)
            echo "bench-postgres: unknown scenario '$s' (expected a subset of: pg-b pg-c pgr-b pgr-c lag)" >&2
            exit 2
            ;;
    esac
done
# The lag is measured on the pgr runs; asked for alone, it gets pgr-c.
if $WANT_LAG && [[ " $SCENARIOS " != *" pgr-b "* && " $SCENARIOS " != *" pgr-c "* ]]; then
    SCENARIOS="$SCENARIOS pgr-c"
fi

for tool in psql redis-cli pgrep; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench-postgres: $tool is required" >&2
        exit 1
    fi
done

admin_sql() {
    PGOPTIONS="-c client_min_messages=warning" psql "$BENCH_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null
}

redis_cmd() {
    redis-cli -u "$BENCH_REDIS_URL" "$@"
}

# Both services must answer before anything is built.
if ! admin_sql "SELECT 1"; then
    echo "bench-postgres: cannot run SQL through $BENCH_DATABASE_URL" >&2
    exit 1
fi
if [[ "$(redis_cmd PING 2>&1)" != PONG ]]; then
    echo "bench-postgres: Redis at $BENCH_REDIS_URL does not answer PING" >&2
    exit 1
fi

if [[ -z "${HIVEWATCH_BIN:-}" ]]; then
    cargo build --release -p hivewatch -p hivewatch-load
    HIVEWATCH_BIN="$TARGET_DIR/release/hivewatch"
elif [[ -z "${HIVEWATCH_LOAD_BIN:-}" ]]; then
    cargo build --release -p hivewatch-load
fi
LOAD_BIN="${HIVEWATCH_LOAD_BIN:-$TARGET_DIR/release/hivewatch-load}"

for bin in "$HIVEWATCH_BIN" "$LOAD_BIN"; do
    if [[ ! -x "$bin" ]]; then
        echo "bench-postgres: not an executable: $bin" >&2
        exit 1
    fi
done

STAMP="$(date -u +%Y%m%d_%H%M%S)"
DB_NAME="hw_bench_$STAMP"
STREAM_KEY="hw_bench_$STAMP:events"

# The admin URL with its database name replaced (query parameters kept).
db_url_for() {
    local url="$1" name="$2" base query="" rest
    base="${url%%\?*}"
    if [[ "$base" != "$url" ]]; then
        query="?${url#*\?}"
    fi
    rest="${base#*://}"
    if [[ "$rest" == */* ]]; then
        base="${base%/*}"
    fi
    echo "$base/$name$query"
}
DB_URL="$(db_url_for "$BENCH_DATABASE_URL" "$DB_NAME")"

db_rows() {
    psql "$DB_URL" -X -A -t -q -v ON_ERROR_STOP=1 -c 'SELECT count(*) FROM agent_events'
}

# Prints "checkpoints wal_bytes" of the whole Postgres server so far (other databases' activity included).
cluster_stats() {
    psql "$BENCH_DATABASE_URL" -X -A -t -q -F ' ' -v ON_ERROR_STOP=1 -c \
        'SELECT checkpoints_timed + checkpoints_req, (SELECT wal_bytes FROM pg_stat_wal) FROM pg_stat_bgwriter'
}

# shellcheck disable=SC2317 # invoked by the EXIT trap (hw_on_exit)
drop_bench_state() {
    admin_sql "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" ||
        echo "bench-postgres: could not drop database $DB_NAME" >&2
    redis_cmd DEL "$STREAM_KEY" >/dev/null ||
        echo "bench-postgres: could not delete stream $STREAM_KEY" >&2
}

# A fresh, empty database and stream for one run (the server is stopped).
fresh_bench_state() {
    admin_sql "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)"
    admin_sql "CREATE DATABASE $DB_NAME"
    redis_cmd DEL "$STREAM_KEY" >/dev/null
}

hw_init bench-postgres
hw_on_exit drop_bench_state
export HIVEWATCH_LOG="$BENCH_SERVER_LOG"
echo "bench-postgres: database $DB_NAME, stream key $STREAM_KEY"

CLK_TCK="$(getconf CLK_TCK)"

# CPU ticks (utime+stime, plus reaped children: Postgres forks autovacuum workers) of the processes named $1.
# For postgres, client backends of other databases (other users of the server) are left out; the shared
# background processes (WAL writer, checkpointer, …) are counted.
ticks_of_comm() {
    local pid total=0 t
    for pid in $(pgrep -x "$1" || true); do
        if [[ "$1" == postgres ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
            awk -v db="$DB_NAME" '$1 == "postgres:" && ($4 ~ /\(/ || $4 == "[local]") && $3 != db { exit 1 }'; then
            continue
        fi
        t="$(sed -E 's/^.*\) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }')" || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# Prints "server postgres redis busy" CPU ticks so far; busy is the whole machine's non-idle time.
cpu_snapshot() {
    local server pg redis busy
    server="$(hw_server_cpu_ticks)"
    pg="$(ticks_of_comm postgres)"
    redis="$(ticks_of_comm redis-server)"
    busy="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)"
    echo "$server $pg $redis $busy"
}

# children_cpu_s VAR: sets VAR to the CPU seconds (user + system) of this shell's reaped children so far.
# Not for `$(…)`: `times` must run in this shell, a subshell's children start from zero.
children_cpu_s() {
    times >"$WORK_DIR/times"
    awk 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%.2f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2]
    }' "$WORK_DIR/times" >"$WORK_DIR/times.s"
    read -r "$1" <"$WORK_DIR/times.s"
}

# cpu_json SECONDS LOADGEN_CPU_S BEFORE... AFTER...: % of one core for each share of the interval; "other" is
# what ran besides hivewatch, Postgres, Redis and the load generator (e.g. a compiler).
cpu_json() {
    local secs="$1" load_s="$2"
    shift 2
    awk -v secs="$secs" -v hz="$CLK_TCK" -v load_s="$load_s" -v b="$1 $2 $3 $4" -v a="$5 $6 $7 $8" 'BEGIN {
        split(b, x, " "); split(a, y, " ")
        pct = 100 / (secs * hz)
        srv = (y[1] - x[1]) * pct; pg = (y[2] - x[2]) * pct; rd = (y[3] - x[3]) * pct; all = (y[4] - x[4]) * pct
        ld = load_s * 100 / secs
        printf "{\"seconds\":%.1f,\"hivewatch_pct\":%.0f,\"postgres_pct\":%.0f,\"redis_pct\":%.0f,", secs, srv, pg, rd
        printf "\"loadgen_pct\":%.0f,\"other_pct\":%.0f,\"machine_pct\":%.0f}\n", ld, all - srv - pg - rd - ld, all
    }'
}

# commits_json SECONDS: the server's `committed` debug lines of this run, summarized.
commits_json() {
    local secs="$1" commits="$WORK_DIR/commits" us="$WORK_DIR/commit_us" n p50 p99
    grep -F ' committed ' "$SERVER_ERR" |
        sed -nE 's/.* batch=([0-9]+) commit_us=([0-9]+) requests=([0-9]+).*/\1 \2 \3/p' >"$commits" || true
    awk '{ print $2 }' "$commits" | sort -n >"$us"
    n="$(wc -l <"$us")"
    p50="$(awk -v n="$n" 'NR == int(n * 0.50) + 1 { print; exit }' "$us")"
    p99="$(awk -v n="$n" 'NR == int(n * 0.99) + 1 { print; exit }' "$us")"
    awk -v secs="$secs" -v p50="${p50:-0}" -v p99="${p99:-0}" '
        { n++; ev += $1; us += $2; rq += $3 }
        END {
            if (n == 0) { print "{\"commits\":0}"; exit }
            printf "{\"commits\":%d,\"events\":%d,\"mean_batch\":%.1f,\"mean_requests\":%.1f,", n, ev, ev / n, rq / n
            printf "\"commit_us_mean\":%.0f,\"commit_us_p50\":%d,\"commit_us_p99\":%d,", us / n, p50, p99
            printf "\"committing_share\":%.2f,\"us_per_event\":%.1f}\n", us / (secs * 1e6), us / ev
        }' "$commits"
}

RESULTS=()
FAILED=0
IDLE_RSS=""
IDLE_HWM=""
MAX_HWM=0

# keep TAG LABEL JSON: prints and remembers `TAG {"label":"LABEL",…}`.
keep() {
    local json="$3"
    local line="$1 {\"label\":\"$2\",${json#\{}"
    echo "$line"
    RESULTS+=("$line")
}

# run LABEL pg|pgr hivewatch-load-args...
run() {
    local label="$1" kind="$2" out="$WORK_DIR/run.out" rc line before after t0 t1 secs rows i load_cpu0 load_cpu1 ck0 ck1 wal0 wal1
    shift 2
    local serve_args=(--database-url "$DB_URL")
    # shellcheck disable=SC2206 # SERVE_EXTRA_ARGS is split on purpose
    serve_args+=($SERVE_EXTRA_ARGS)
    if [[ "$kind" == pgr ]]; then
        serve_args+=(--redis-url "$BENCH_REDIS_URL" --redis-stream-key "$STREAM_KEY"
            --redis-stream-maxlen "$BENCH_STREAM_MAXLEN")
    fi
    echo
    echo "== $label: $* $LOAD_EXTRA_ARGS =="
    fresh_bench_state
    hw_start_server -- "${serve_args[@]}"
    echo "bench-postgres: server pid $SERVER_PID, OTLP HTTP $HTTP_ADDR"
    sleep 1
    local idle_rss idle_hwm
    read -r idle_rss idle_hwm < <(hw_server_mem_kb)
    if [[ -z "$IDLE_RSS" ]]; then
        IDLE_RSS="$idle_rss"
        IDLE_HWM="$idle_hwm"
    fi

    read -r ck0 wal0 < <(cluster_stats)
    before="$(cpu_snapshot)"
    t0="$(date +%s.%N)"
    children_cpu_s load_cpu0
    # In the background so that a signal to this script is handled at once (see hw_wait_child).
    # shellcheck disable=SC2086 # LOAD_EXTRA_ARGS is split on purpose
    "$LOAD_BIN" --protocol http --endpoint "http://$HTTP_ADDR" "$@" $LOAD_EXTRA_ARGS >"$out" &
    rc=0
    hw_wait_child $! || rc=$?
    if ! hw_server_alive; then
        cat "$out"
        echo "bench-postgres: server died during $label" >&2
        hw_show_server_logs
        exit 1
    fi
    children_cpu_s load_cpu1
    t1="$(date +%s.%N)"
    after="$(cpu_snapshot)"
    read -r ck1 wal1 < <(cluster_stats)
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
    cat "$out"
    if [[ $rc -ne 0 ]]; then
        echo "bench-postgres: $label: hivewatch-load exited with $rc" >&2
        FAILED=1
    fi
    line="$(grep -m1 '^RESULT {' "$out" || true)"
    if [[ -n "$line" ]]; then
        keep RESULT "$label" "${line#RESULT }"
    fi
    # shellcheck disable=SC2086 # four numbers each
    keep CPU "$label" "$(cpu_json "$secs" "$(awk -v a="$load_cpu0" -v b="$load_cpu1" 'BEGIN { print b - a }')" \
        $before $after)"

    rows="$(db_rows)"
    keep ROWS "$label" "$(awk -v rows="$rows" -v ck=$((ck1 - ck0)) -v wal="$wal0 $wal1" 'BEGIN {
        split(wal, w, " ")
        printf "{\"agent_events\":%d,\"wal_bytes_per_row\":%.0f,\"checkpoints\":%d}\n", rows, rows ? (w[2] - w[1]) / rows : 0, ck
    }')"

    if [[ "$kind" == pgr ]] && $WANT_LAG; then
        # Every commit was answered before the load tool exited; the stream follows within moments.
        for ((i = 0; i < 300; i++)); do
            [[ "$(redis_cmd XLEN "$STREAM_KEY")" -ge "$rows" ]] && break
            sleep 0.1
        done
        rc=0
        "$LOAD_BIN" stream-lag --redis-url "$BENCH_REDIS_URL" --key "$STREAM_KEY" --expect-distinct "$rows" \
            >"$out" || rc=$?
        cat "$out"
        if [[ $rc -ne 0 ]]; then
            echo "bench-postgres: $label: the stream does not hold one entry per row (or could not be read)" >&2
            FAILED=1
        fi
        line="$(grep -m1 '^RESULT {' "$out" || true)"
        if [[ -n "$line" ]]; then
            keep RESULT "$label-lag" "${line#RESULT }"
        fi
    fi

    local rss hwm
    read -r rss hwm < <(hw_server_mem_kb)
    if ((hwm > MAX_HWM)); then
        MAX_HWM="$hwm"
    fi
    keep RSS "$label" "{\"idle_vmrss_kb\":$idle_rss,\"loaded_vmrss_kb\":$rss,\"loaded_vmhwm_kb\":$hwm}"

    hw_stop_server 30
    if [[ "${STOP_RC:-0}" -ne 0 ]]; then
        echo "bench-postgres: server exit status was ${STOP_RC} after SIGTERM" >&2
        FAILED=1
    fi
    keep COMMITS "$label" "$(commits_json "$secs")"
}

B=(--batch 100 --duration 10)
C=(--batch 10 --rate 1000 --concurrency 32 --duration 20)
for s in $SCENARIOS; do
    case "$s" in
        pg-b)
            run pg-b-c8 pg "${B[@]}" --concurrency 8
            run pg-b-c32 pg "${B[@]}" --concurrency 32
            ;;
        pg-c) run pg-c pg "${C[@]}" ;;
        pgr-b)
            run pgr-b-c8 pgr "${B[@]}" --concurrency 8
            run pgr-b-c32 pgr "${B[@]}" --concurrency 32
            ;;
        pgr-c) run pgr-c pgr "${C[@]}" ;;
    esac
done

echo
echo "== summary =="
for line in "${RESULTS[@]}"; do
    echo "$line"
done
echo "idle memory:   VmRSS ${IDLE_RSS:-?} kB, VmHWM ${IDLE_HWM:-?} kB (first server start)"
echo "loaded memory: VmHWM ${MAX_HWM} kB (peak over all runs)"
echo "RSS {\"idle_vmrss_kb\":${IDLE_RSS:-null},\"idle_vmhwm_kb\":${IDLE_HWM:-null},\"loaded_vmhwm_kb\":$MAX_HWM}"
exit "$FAILED"
