#!/usr/bin/env bash
# Benchmarks hivewatch's WebSocket live stream (issue 6) with hivewatch-wsbench.
#
# Builds both binaries in release mode, starts `hivewatch serve` on ephemeral loopback ports with a fresh data
# directory (default embedded store), and runs the scenarios below. Every wsbench run prints a `RESULT {json}`
# line; a summary at the end repeats them as tables.
#
# Scenarios (SCENARIOS, default all, in this order):
#   latency   LAT_CLIENTS (100) clients, each following one of SESSIONS (100) sessions, RATE (1000) events/s
#             for WARMUP + DURATION s: ingest-to-WebSocket latency p50/p99 (target p99 <= 20 ms)
#   capacity  the same load with CAP_STEPS clients in turn (each following one session, so an event reaches
#             ~clients/SESSIONS of them), until delivery lag p99 exceeds LAG_LIMIT_MS or errors appear
#             (connect errors, failed requests, lost connections, missed or undelivered events)
#   all       the same with ALL_STEPS clients in turn, every client following every event
#   memory    per N in MEM_STEPS, a fresh server: VmRSS with 0 clients (after 10 connected and left), then
#             with N idle clients (heartbeats only); (RSS_N - RSS_0) / N is the memory per connection
#             (target <= 20 KB)
#
# Environment (all optional):
#   HIVEWATCH_BIN, WSBENCH_BIN  binaries to use; when both are set, nothing is built
#   SCENARIOS      subset of "latency capacity all memory"
#   RATE BATCH SESSIONS WARMUP DURATION   load shape (1000 events/s, 10 per request, 100 sessions, 2 + 20 s)
#   LAT_CLIENTS    clients of the latency scenario (100)
#   CAP_STEPS      client counts of the capacity scenario ("100 1000 2000 5000 7500 10000 15000 19000")
#   ALL_STEPS      client counts of the all-events scenario ("100 200 300 500 1000 2000 5000")
#   LAG_LIMIT_MS   delivery lag p99 that ends a ramp (1000)
#   MEM_STEPS      idle client counts ("1000 10000"); MEM_HOLD, MEM_SETTLE seconds (20, 5)
#   SOURCE_IPS     loopback source addresses the clients spread over (8: 127.0.0.2 .. 127.0.0.9)
#   WSBENCH_EXTRA_ARGS  appended to every wsbench run (later flags win)
# Settings of the server go through its environment variables (e.g. HIVEWATCH_LIVE_HEARTBEAT_SECS).
#
# Both hivewatch and every client hold one file descriptor per connection: the script raises the open-file
# limit as far as it may (`ulimit -n`), and skips client counts the limit cannot hold.
set -euo pipefail

# shellcheck source=lib/server.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCENARIOS="${SCENARIOS:-latency capacity all memory}"
RATE="${RATE:-1000}"
BATCH="${BATCH:-10}"
SESSIONS="${SESSIONS:-100}"
WARMUP="${WARMUP:-2}"
DURATION="${DURATION:-20}"
LAT_CLIENTS="${LAT_CLIENTS:-100}"
CAP_STEPS="${CAP_STEPS:-100 1000 2000 5000 7500 10000 15000 19000}"
ALL_STEPS="${ALL_STEPS:-100 200 300 500 1000 2000 5000}"
LAG_LIMIT_MS="${LAG_LIMIT_MS:-1000}"
MEM_STEPS="${MEM_STEPS:-1000 10000}"
MEM_HOLD="${MEM_HOLD:-20}"
MEM_SETTLE="${MEM_SETTLE:-5}"
SOURCE_IPS="${SOURCE_IPS:-8}"
WSBENCH_EXTRA_ARGS="${WSBENCH_EXTRA_ARGS:-}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

for s in $SCENARIOS; do
    case "$s" in
        latency | capacity | all | memory) ;;
        *)
            echo "bench-live: unknown scenario '$s' (expected a subset of: latency capacity all memory)" >&2
            exit 2
            ;;
    esac
done
for n in $RATE $BATCH $SESSIONS $WARMUP $DURATION $LAT_CLIENTS $CAP_STEPS $ALL_STEPS $LAG_LIMIT_MS $MEM_STEPS \
    $MEM_HOLD $MEM_SETTLE $SOURCE_IPS; do
    if [[ ! "$n" =~ ^[0-9]+$ ]]; then
        echo "bench-live: not a number: '$n'" >&2
        exit 2
    fi
done
if ((SOURCE_IPS > 253)); then
    echo "bench-live: SOURCE_IPS is at most 253 (127.0.0.2 .. 127.0.0.254)" >&2
    exit 2
fi
if ! command -v python3 >/dev/null; then
    echo "bench-live: python3 is required (summary)" >&2
    exit 1
fi

if [[ -z "${HIVEWATCH_BIN:-}" || -z "${WSBENCH_BIN:-}" ]]; then
    cargo build --release -p hivewatch -p hivewatch-wsbench
fi
HIVEWATCH_BIN="${HIVEWATCH_BIN:-$TARGET_DIR/release/hivewatch}"
WSBENCH_BIN="${WSBENCH_BIN:-$TARGET_DIR/release/hivewatch-wsbench}"
for bin in "$HIVEWATCH_BIN" "$WSBENCH_BIN"; do
    if [[ ! -x "$bin" ]]; then
        echo "bench-live: not an executable: $bin" >&2
        exit 1
    fi
done

# One descriptor per connection on each side. Raise the hard limit if allowed (root outside a restricted
# container), else the soft limit to the hard one. hivewatch inherits the limit from this shell.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE="$(ulimit -n)"
# What a run may ask for: the limit less some room for the runtime, the store, the sender's pool.
if [[ "$NOFILE" == unlimited ]]; then
    MAX_CLIENTS=100000000
else
    MAX_CLIENTS=$((NOFILE - 200))
fi

SOURCE_ARG=""
if ((SOURCE_IPS > 0)); then
    SOURCE_ARG="--source-ip $(seq -s, -f '127.0.0.%g' 2 $((SOURCE_IPS + 1)))"
fi

hw_init bench-live
RESULTS="$WORK_DIR/results.jsonl"
: >"$RESULTS"

echo "bench-live: open-file limit $NOFILE (client counts above $MAX_CLIENTS are skipped);" \
    "$(nproc) cores, shared by hivewatch and the benchmark; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# A fresh start: the log is emptied first, so that the address found in it cannot be the previous server's
# (the new process truncates it only once it runs).
start_server() {
    : >"$SERVER_LOG"
    hw_start_server
    echo "bench-live: server pid $SERVER_PID at $HTTP_ADDR"
}

rss_kib() {
    sed -nE 's/^VmRSS:[[:space:]]+([0-9]+) kB$/\1/p' "/proc/$SERVER_PID/status"
}

# wsbench SCENARIO ARGS...: one wsbench run against the server; its RESULT line, tagged with the scenario, the
# load average before the run and the JSON object in RESULT_EXTRA, goes to $RESULTS. Returns wsbench's status.
RESULT_EXTRA='{}'
wsbench() {
    local scenario="$1" rc=0 load out
    shift
    if ! hw_server_alive; then
        echo "bench-live: the server is gone before a $scenario run" >&2
        hw_show_server_logs
        exit 1
    fi
    load="$(cut -d' ' -f1 /proc/loadavg)"
    out="$WORK_DIR/wsbench.out"
    # shellcheck disable=SC2206 # SOURCE_ARG and WSBENCH_EXTRA_ARGS are word lists
    local cmd=("$WSBENCH_BIN" --addr "$HTTP_ADDR" --server-pid "$SERVER_PID" --sessions "$SESSIONS"
        $SOURCE_ARG "$@" $WSBENCH_EXTRA_ARGS)
    echo "bench-live: [$scenario] hivewatch-wsbench ${cmd[*]:1}"
    "${cmd[@]}" >"$out" &
    hw_wait_child $! || rc=$?
    grep -v '^RESULT ' "$out" || true
    local line
    line="$(grep -m1 '^RESULT ' "$out" | cut -c8-)" || true
    if [[ -z "$line" ]]; then
        echo "bench-live: wsbench printed no RESULT (status $rc)" >&2
        return 1
    fi
    echo "RESULT $line"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
r.update(scenario=sys.argv[2], loadavg_before=float(sys.argv[3]), **json.loads(sys.argv[4]))
print(json.dumps(r))
' "$line" "$scenario" "$load" "$RESULT_EXTRA" >>"$RESULTS"
    return "$rc"
}

# Whether the last RESULT ends a ramp: lag p99 over the limit, or anything lost or refused.
ramp_over() {
    tail -n1 "$RESULTS" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
p99 = (r.get("latency") or {}).get("p99_ms")
bad = [k for k in ("connect_errors", "failed_requests", "clients_lost", "missed", "undelivered") if r.get(k)]
over = p99 is None or p99 > float(sys.argv[1])
if bad or over:
    print("ramp ends: " + ", ".join(bad + ([f"lag p99 {p99} ms > {sys.argv[1]} ms"] if over else [])))
    sys.exit(0)
sys.exit(1)
' "$LAG_LIMIT_MS"
}

load_args=(--rate "$RATE" --batch "$BATCH" --warmup "$WARMUP" --duration "$DURATION")

# ramp SCENARIO SUBSCRIBE STEPS...
ramp() {
    local scenario="$1" subscribe="$2" n
    shift 2
    for n in "$@"; do
        if ((n > MAX_CLIENTS)); then
            echo "bench-live: [$scenario] skipping $n clients: the open-file limit ($NOFILE) holds at most $MAX_CLIENTS"
            break
        fi
        wsbench "$scenario" --clients "$n" --subscribe "$subscribe" "${load_args[@]}" \
            --label "$scenario-$n" || true
        if ramp_over; then
            break
        fi
        # Let the server finish with the closed connections before the next step.
        sleep 3
    done
}

for scenario in $SCENARIOS; do
    case "$scenario" in
        latency)
            start_server
            wsbench latency --clients "$LAT_CLIENTS" --subscribe session "${load_args[@]}" --label latency || true
            hw_stop_server 10
            ;;
        capacity)
            start_server
            # shellcheck disable=SC2086 # CAP_STEPS is a word list
            ramp capacity session $CAP_STEPS
            hw_stop_server 10
            ;;
        all)
            start_server
            # shellcheck disable=SC2086 # ALL_STEPS is a word list
            ramp all all $ALL_STEPS
            hw_stop_server 10
            ;;
        memory)
            for n in $MEM_STEPS; do
                if ((n > MAX_CLIENTS)); then
                    echo "bench-live: [memory] skipping $n clients: the open-file limit ($NOFILE) holds at most $MAX_CLIENTS"
                    continue
                fi
                start_server
                # A few connections first, so that what the first one allocates once (runtime, buffers pools)
                # is in the baseline rather than spread over N.
                wsbench memory-warmup --idle --clients 10 --hold 1 --settle 0 --label warmup >/dev/null || true
                sleep 2
                RESULT_EXTRA="{\"server_rss_kib_idle\": $(rss_kib)}"
                wsbench memory --idle --clients "$n" --hold "$MEM_HOLD" --settle "$MEM_SETTLE" \
                    --label "memory-$n" || true
                RESULT_EXTRA='{}'
                hw_stop_server 10
            done
            ;;
    esac
done

echo
echo "== hivewatch live stream: $RATE events/s, $BATCH per request, $SESSIONS sessions =="
python3 - "$RESULTS" <<'EOF'
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]

def f(v, nd=1):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

load = [r for r in rows if r.get("mode") == "load"]
if load:
    # CPU in per cent of one core over the load phase: hivewatch, the benchmark, and everything else running on
    # the machine meanwhile (figures taken while 'other' is large are not comparable).
    print(f"{'scenario':<10} {'clients':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'p99/quarter ms':<28} {'delivered/expected':>22} {'missed':>7} {'errors':>6} "
          f"{'hw cpu%':>7} {'bench cpu%':>10} {'other cpu%':>10}")
    for r in load:
        lat = r["latency"]
        errors = r["connect_errors"] + r["failed_requests"] + r["clients_lost"]
        quarters = "/".join(f(q) for q in r["p99_by_quarter_ms"])
        print(f"{r['scenario']:<10} {r['clients']:>7} {f(lat['p50_ms'])} {f(lat['p90_ms']):>8} "
              f"{f(lat['p99_ms']):>8} {f(lat['max_ms']):>8} {quarters:<28} "
              f"{str(r['delivered']) + '/' + str(r['expected']):>22} {r['missed']:>7} {errors:>6} "
              f"{f(r['server_cpu_pct'], 0):>7} {f(r['bench_cpu_pct'], 0):>10} {f(r.get('other_cpu_pct'), 0):>10}")
lat = [r for r in load if r["scenario"] == "latency"]
for r in lat:
    p99 = r["latency"]["p99_ms"]
    ok = p99 is not None and p99 <= 20 and not r["missed"] and not r["undelivered"]
    print(f"latency: p50 {r['latency']['p50_ms']} ms, p99 {p99} ms with {r['clients']} clients; "
          f"target p99 <= 20 ms: {'met' if ok else 'NOT MET'}")
for scen in ("capacity", "all"):
    runs = [r for r in load if r["scenario"] == scen]
    good = [r["clients"] for r in runs
            if r["latency"]["p99_ms"] is not None and r["latency"]["p99_ms"] <= 1000
            and not (r["connect_errors"] or r["failed_requests"] or r["clients_lost"] or r["missed"]
                     or r["undelivered"])]
    if runs:
        held = max(good) if good else 0
        note = "; target >= 10,000: " + ("met" if held >= 10000 else "NOT MET") if scen == "capacity" else ""
        print(f"{scen}: held {held} clients with lag p99 <= 1 s and nothing lost{note}")

for r in (r for r in rows if r.get("mode") == "idle" and r["scenario"] == "memory"):
    rss0 = r["server_rss_kib_idle"]
    held = r["server_rss_kib_held"]
    n = r["connected"]
    if held is None or not n:
        print(f"memory: {r['clients']} clients: no reading")
        continue
    per = (held - rss0) * 1024 / n
    print(f"memory: {n} idle clients: VmRSS {rss0} KiB -> {held} KiB ({r['server_rss_kib_after_close']} KiB "
          f"after they left): {per:.0f} bytes ({per / 1024:.1f} KiB) per connection; target <= 20 KB: "
          f"{'met' if per <= 20000 else 'NOT MET'} (connect errors {r['connect_errors']})")
for r in rows:
    print("RESULT " + json.dumps(r))
EOF
