#!/usr/bin/env bash
# Benchmarks a local hivewatch receiver with hivewatch-load.
#
# Builds both binaries in release mode, starts `hivewatch serve` on ephemeral
# loopback ports, records its idle memory, runs the load scenarios, records
# its peak memory under load, then stops it with SIGTERM.
#
# Environment (all optional):
#   HIVEWATCH_BIN       server binary to use; when set, only the load tool is built
#   HIVEWATCH_LOAD_BIN  load tool binary; when both are set, nothing is built
#   SCENARIOS           space-separated subset of "a b c" (default: all)
#   LOAD_EXTRA_ARGS     extra flags appended to every hivewatch-load run (later
#                       flags win, e.g. "--duration 2 --warmup 1" for a smoke run)
#
# Scenarios:
#   a  batch 1, concurrency 32, 10 s, over http and over grpc
#   b  batch 100, concurrency 32 and 8 over http, concurrency 32 over grpc, 10 s
#   c  http, batch 10, open loop at 1,000 events/s, concurrency 32, 20 s
#
# Every run prints a `RESULT {json}` line; a summary at the end repeats them
# along with an `RSS {json}` line (kB, from /proc/PID/status).
set -euo pipefail

# shellcheck source=lib/server.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCENARIOS="${SCENARIOS:-a b c}"
LOAD_EXTRA_ARGS="${LOAD_EXTRA_ARGS:-}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

for s in $SCENARIOS; do
    case "$s" in
        a | b | c) ;;
        *)
            echo "bench: unknown scenario '$s' (expected a subset of: a b c)" >&2
            exit 2
            ;;
    esac
done

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

# Prints "VmRSS VmHWM" in kB for the server process.
mem_kb() {
    awk '/^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } END { print rss + 0, hwm + 0 }' \
        "/proc/$SERVER_PID/status"
}

hw_start_server --grpc
echo "bench: server pid $SERVER_PID, OTLP gRPC $GRPC_ADDR, OTLP HTTP $HTTP_ADDR"

sleep 2
read -r IDLE_RSS IDLE_HWM < <(mem_kb)
echo "bench: idle memory VmRSS ${IDLE_RSS} kB, VmHWM ${IDLE_HWM} kB"

RESULTS=()
FAILED=0

# run LABEL hivewatch-load-args...
run() {
    local label="$1" out="$WORK_DIR/run.out" rc line
    shift
    if ! hw_server_alive; then
        echo "bench: server is gone before scenario $label" >&2
        hw_show_server_logs
        exit 1
    fi
    echo
    echo "== $label: $* $LOAD_EXTRA_ARGS =="
    # In the background so that a signal to this script is handled at once (see hw_wait_child).
    # shellcheck disable=SC2086 # LOAD_EXTRA_ARGS is split on purpose
    "$LOAD_BIN" "$@" $LOAD_EXTRA_ARGS >"$out" &
    rc=0
    hw_wait_child $! || rc=$?
    cat "$out"
    if [[ $rc -ne 0 ]]; then
        echo "bench: scenario $label: hivewatch-load exited with $rc" >&2
        FAILED=1
    fi
    line="$(grep -m1 '^RESULT ' "$out" || true)"
    if [[ -n "$line" ]]; then
        RESULTS+=("$line")
    fi
}

HTTP="http://$HTTP_ADDR"
GRPC="http://$GRPC_ADDR"

for s in $SCENARIOS; do
    case "$s" in
        a)
            run a-http --protocol http --endpoint "$HTTP" --batch 1 --concurrency 32 --duration 10
            run a-grpc --protocol grpc --endpoint "$GRPC" --batch 1 --concurrency 32 --duration 10
            ;;
        b)
            run b-http-c32 --protocol http --endpoint "$HTTP" --batch 100 --concurrency 32 --duration 10
            run b-http-c8 --protocol http --endpoint "$HTTP" --batch 100 --concurrency 8 --duration 10
            run b-grpc-c32 --protocol grpc --endpoint "$GRPC" --batch 100 --concurrency 32 --duration 10
            ;;
        c)
            run c-http-rate --protocol http --endpoint "$HTTP" --batch 10 --rate 1000 --concurrency 32 --duration 20
            ;;
    esac
done

if ! hw_server_alive; then
    echo "bench: server died during the benchmark" >&2
    hw_show_server_logs
    exit 1
fi
read -r LOADED_RSS LOADED_HWM < <(mem_kb)

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

if [[ "${STOP_RC:-0}" -ne 0 ]]; then
    echo "bench: server exit status was ${STOP_RC} after SIGTERM" >&2
    FAILED=1
fi
exit "$FAILED"
