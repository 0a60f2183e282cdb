#!/usr/bin/env bash
# Benchmarks a local hivewatch receiver with hivewatch-load.
#
# Builds both binaries in release mode, starts `hivewatch serve` on ephemeral
# loopback ports (embedded SQLite store, durable acks), records its idle
# memory, runs the load scenarios, records its peak memory under load, stops
# it with SIGTERM and prints a table of the results.
#
# With two or more cores the server is pinned to core 0 and the load
# generator to core 1 (taskset), so that the figures are the server's on one
# core and do not depend on how the two share the machine.
#
# Environment (all optional):
#   HIVEWATCH_BIN       server binary to use; when set, only the load tool is built
#   HIVEWATCH_LOAD_BIN  load tool binary; when both are set, nothing is built
#   SCENARIOS           space-separated subset of the scenarios below (default: all)
#   BENCH_PIN           0 to leave both processes unpinned (default: pin with two or more cores)
#   SERVE_EXTRA_ARGS    extra `hivewatch serve` flags
#   LOAD_EXTRA_ARGS     extra flags appended to every hivewatch-load run (later
#                       flags win, e.g. "--duration 2 --warmup 1" for a smoke run)
#
# Scenarios (32 concurrent senders each, 10 s measured after 2 s of warmup;
# every event with fresh ids):
#   spans1    OTLP/HTTP protobuf, 1 span per request
#   spans100  OTLP/HTTP protobuf, 100 spans per request
#   json100   OTLP/HTTP JSON, 100 spans per request
#   logs100   OTLP/HTTP protobuf, 100 log records per request
#   hook1     hook JSON (`PostToolUse`), 1 event per request
#   grpc      OTLP/gRPC logs, 1 and 100 records per request
#   latency   ack latency at a steady 1,000 events/s (OTLP/HTTP, 10 records
#             per request, open loop, 20 s)
#
# Every run prints a `RESULT {json}` line; the summary at the end repeats them,
# adds an `RSS {json}` line (kB, from /proc/PID/status) and the table, whose last
# column is the server's CPU time per stored event (from /proc/PID/stat and the
# hivewatch_events_total counter): steadier than rates on a shared machine.
set -euo pipefail

# shellcheck source=lib/server.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL_SCENARIOS="spans1 spans100 json100 logs100 hook1 grpc latency"
SCENARIOS="${SCENARIOS:-$ALL_SCENARIOS}"
LOAD_EXTRA_ARGS="${LOAD_EXTRA_ARGS:-}"
SERVE_EXTRA_ARGS="${SERVE_EXTRA_ARGS:-}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

for s in $SCENARIOS; do
    case " $ALL_SCENARIOS " in
        *" $s "*) ;;
        *)
            echo "bench: unknown scenario '$s' (expected a subset of: $ALL_SCENARIOS)" >&2
            exit 2
            ;;
    esac
done

LOAD_PIN=()
PIN=false
if [[ "${BENCH_PIN:-1}" != 0 ]] && [[ "$(nproc)" -ge 2 ]]; then
    if ! command -v taskset >/dev/null; then
        echo "bench: taskset is missing (Debian package util-linux); set BENCH_PIN=0 to run unpinned" >&2
        exit 1
    fi
    PIN=true
    LOAD_PIN=(taskset -c 1)
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
        echo "bench: not an executable: $bin" >&2
        exit 1
    fi
done

hw_init bench

# Prints how many events the server has stored so far (the sum of its hivewatch_events_total series).
stored_events() {
    curl -fsS "http://$HTTP_ADDR/metrics" |
        awk '/^hivewatch_events_total[{ ]/ { n += $NF } END { printf "%d\n", n }'
}

# shellcheck disable=SC2086 # SERVE_EXTRA_ARGS is split on purpose
hw_start_server --grpc -- $SERVE_EXTRA_ARGS
echo "bench: server pid $SERVER_PID, OTLP gRPC $GRPC_ADDR, OTLP HTTP $HTTP_ADDR"
if $PIN; then
    # Every thread the server has now; those it starts later inherit the mask.
    taskset -a -p -c 0 "$SERVER_PID" >/dev/null
    echo "bench: server pinned to core 0, load generator to core 1"
fi

sleep 2
read -r IDLE_RSS IDLE_HWM < <(hw_server_mem_kb)
echo "bench: idle memory VmRSS ${IDLE_RSS} kB, VmHWM ${IDLE_HWM} kB"

RESULTS=()
LABELS=()
CPU_US=()
TICK_US=$((1000000 / $(getconf CLK_TCK)))
FAILED=0

# run LABEL hivewatch-load-args...
run() {
    local label="$1" out="$WORK_DIR/run.out" rc line ticks0 events0 ticks events
    shift
    if ! hw_server_alive; then
        echo "bench: server is gone before scenario $label" >&2
        hw_show_server_logs
        exit 1
    fi
    echo
    echo "== $label: $* $LOAD_EXTRA_ARGS =="
    ticks0="$(hw_server_cpu_ticks)"
    events0="$(stored_events)"
    # In the background so that a signal to this script is handled at once (see hw_wait_child).
    # shellcheck disable=SC2086 # LOAD_EXTRA_ARGS is split on purpose
    "${LOAD_PIN[@]}" "$LOAD_BIN" "$@" $LOAD_EXTRA_ARGS >"$out" &
    rc=0
    hw_wait_child $! || rc=$?
    ticks=$(($(hw_server_cpu_ticks) - ticks0))
    events=$(($(stored_events) - events0))
    cat "$out"
    if [[ $rc -ne 0 ]]; then
        echo "bench: scenario $label: hivewatch-load exited with $rc" >&2
        FAILED=1
    fi
    line="$(grep -m1 '^RESULT ' "$out" || true)"
    if [[ -n "$line" ]]; then
        RESULTS+=("$line")
        LABELS+=("$label")
        # Server CPU per stored event over the whole run, warmup included: it does not depend on how fast the
        # machine's other tenants let the server run, which requests per second do.
        CPU_US+=("$(awk -v t="$ticks" -v u="$TICK_US" -v n="$events" \
            'BEGIN { if (n > 0) printf "%.1f", t * u / n; else print "-" }')")
    fi
}

# field JSON NAME: a number (or null) of a RESULT line's JSON, by key; `p50`/`p99` come from `latency_ms`.
field() {
    sed -nE "s/.*\"$2\":(null|-?[0-9.]+).*/\1/p" <<<"$1"
}

# Prints the table of the results (markdown, as docs/BENCHMARKS.md quotes it).
table() {
    local i line
    echo "| scenario | load | req/s | items/s | ack p50 ms | ack p99 ms | server CPU µs/item |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for i in "${!RESULTS[@]}"; do
        line="${RESULTS[$i]#RESULT }"
        printf '| %s | %s %s %s, batch %s, %s senders%s | %s | %s | %s | %s | %s |\n' \
            "${LABELS[$i]}" \
            "$(sed -nE 's/.*"protocol":"([a-z]+)".*/\1/p' <<<"$line")" \
            "$(sed -nE 's/.*"encoding":"([a-z]+)".*/\1/p' <<<"$line")" \
            "$(sed -nE 's/.*"signal":"([a-z]+)".*/\1/p' <<<"$line")" \
            "$(field "$line" batch)" "$(field "$line" concurrency)" \
            "$(r="$(field "$line" rate)"; [[ "$r" != null ]] && echo ", $r events/s offered")" \
            "$(field "$line" req_per_s)" "$(field "$line" events_per_s)" \
            "$(field "$line" p50)" "$(field "$line" p99)" "${CPU_US[$i]}"
    done
}

HTTP="http://$HTTP_ADDR"
GRPC="http://$GRPC_ADDR"

COMMON=(--concurrency 32 --duration 10)
for s in $SCENARIOS; do
    case "$s" in
        spans1) run spans1 --endpoint "$HTTP" --signal traces --batch 1 "${COMMON[@]}" ;;
        spans100) run spans100 --endpoint "$HTTP" --signal traces --batch 100 "${COMMON[@]}" ;;
        json100) run json100 --endpoint "$HTTP" --signal traces --encoding json --batch 100 "${COMMON[@]}" ;;
        logs100) run logs100 --endpoint "$HTTP" --signal logs --batch 100 "${COMMON[@]}" ;;
        hook1) run hook1 --endpoint "$HTTP" --signal hook --batch 1 "${COMMON[@]}" ;;
        grpc)
            run grpc1 --protocol grpc --endpoint "$GRPC" --batch 1 "${COMMON[@]}"
            run grpc100 --protocol grpc --endpoint "$GRPC" --batch 100 "${COMMON[@]}"
            ;;
        latency) run latency --endpoint "$HTTP" --batch 10 --rate 1000 --concurrency 32 --duration 20 ;;
    esac
done

if ! hw_server_alive; then
    echo "bench: server died during the benchmark" >&2
    hw_show_server_logs
    exit 1
fi
read -r LOADED_RSS LOADED_HWM < <(hw_server_mem_kb)

echo
echo "bench: stopping server (SIGTERM)"
STOP_START=$SECONDS
hw_stop_server 30
echo "bench: server exited with status ${STOP_RC:-?} after $((SECONDS - STOP_START)) s"

echo
echo "== summary =="
for line in "${RESULTS[@]}"; do
    echo "$line"
done
echo "idle memory:   VmRSS ${IDLE_RSS} kB, VmHWM ${IDLE_HWM} kB"
echo "loaded memory: VmRSS ${LOADED_RSS} kB, VmHWM ${LOADED_HWM} kB (peak over all scenarios)"
echo "RSS {\"idle_vmrss_kb\":$IDLE_RSS,\"idle_vmhwm_kb\":$IDLE_HWM,\"loaded_vmrss_kb\":$LOADED_RSS,\"loaded_vmhwm_kb\":$LOADED_HWM}"

echo
echo "server pinned to one core: $PIN ($(nproc) cores); idle VmRSS $((IDLE_RSS / 1024)) MB, peak VmHWM $((LOADED_HWM / 1024)) MB"
table

if [[ "${STOP_RC:-0}" -ne 0 ]]; then
    echo "bench: server exit status was ${STOP_RC} after SIGTERM" >&2
    FAILED=1
fi
exit "$FAILED"
