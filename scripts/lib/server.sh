# shellcheck shell=bash
# Runs a local `hivewatch serve` for the benchmark scripts; sourced by scripts/bench.sh and
# scripts/bench-hook.sh and scripts/bench-postgres.sh, which run with `set -euo pipefail`.
#
#   hw_init PROG [--quiet-kill]  makes the temp dirs, installs the EXIT/INT/TERM traps
#   hw_on_exit FUNC              has the EXIT trap call FUNC once the server is stopped (cleanup)
#   hw_start_server [--grpc] [-- ARGS...]
#                                starts `$HIVEWATCH_BIN serve [ARGS...]`, sets HTTP_ADDR (and GRPC_ADDR)
#   hw_server_alive              true while the server runs
#   hw_show_server_logs          tails the server's stdout and stderr to stderr
#   hw_server_mem_kb             prints the server's "VmRSS VmHWM" in kB
#   hw_server_cpu_ticks          prints the server's CPU time so far (user + system), in clock ticks
#   hw_wait_child PID            waits for a background child, stopped by the EXIT trap if need be
#   hw_stop_server GRACE         SIGTERM, then SIGKILL after GRACE s; sets STOP_RC
#
# Globals set here for the script: DATA_DIR (the server's --data-dir), WORK_DIR (scratch space of the
# script; holds SERVER_LOG and SERVER_ERR), SERVER_PID, HTTP_ADDR, GRPC_ADDR (host:port) and STOP_RC.
# Both dirs are removed on exit.

# hw_init PROG [--quiet-kill]: PROG prefixes messages; with --quiet-kill, a server still running after
# the grace period is killed without a warning.
hw_init() {
    HW_PROG="$1"
    HW_KILL_WARNING=true
    if [[ "${2:-}" == --quiet-kill ]]; then
        HW_KILL_WARNING=false
    fi
    DATA_DIR="$(mktemp -d)"
    WORK_DIR="$(mktemp -d)"
    SERVER_LOG="$WORK_DIR/server.out"
    SERVER_ERR="$WORK_DIR/server.err"
    SERVER_PID=""
    HW_CHILD_PID=""
    HW_EXIT_HOOKS=()
    trap hw_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# hw_on_exit FUNC: the EXIT trap calls FUNC (no arguments) after stopping the server, before removing the
# temp dirs; hooks run in the order they were added and their failures are ignored.
hw_on_exit() {
    HW_EXIT_HOOKS+=("$1")
}

hw_server_alive() {
    [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null
}

hw_server_mem_kb() {
    awk '/^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } END { print rss + 0, hwm + 0 }' \
        "/proc/$SERVER_PID/status"
}

# The fields after the `(comm)` of /proc/PID/stat, which may itself hold spaces: utime and stime are the 12th
# and 13th of them.
hw_server_cpu_ticks() {
    sed -E 's/^.*\) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
}

hw_show_server_logs() {
    echo "--- server stdout (tail) ---" >&2
    tail -n 20 "$SERVER_LOG" >&2 || true
    echo "--- server stderr (tail) ---" >&2
    tail -n 40 "$SERVER_ERR" >&2 || true
}

# host:port after `//` on the first stdout line containing $1.
hw_bound_addr() {
    grep -m1 -F "$1" "$SERVER_LOG" 2>/dev/null | sed -nE 's#.*//([^/[:space:]]+).*#\1#p' || true
}

# hw_start_server [--grpc] [-- ARGS...]: starts the server on ephemeral loopback ports and waits up to 30 s
# for it to print its OTLP HTTP address (and with --grpc its OTLP gRPC one too). Exits 1 if it does not.
# ARGS after `--` are further `serve` flags (e.g. --database-url). Each start truncates SERVER_LOG and
# SERVER_ERR.
# shellcheck disable=SC2120 # --grpc is optional
hw_start_server() {
    local need_grpc=false what="its OTLP HTTP address" i
    if [[ "${1:-}" == --grpc ]]; then
        need_grpc=true
        what="its OTLP gRPC and OTLP HTTP addresses"
        shift
    fi
    if [[ "${1:-}" == -- ]]; then
        shift
    fi
    echo "$HW_PROG: starting $HIVEWATCH_BIN serve (data dir $DATA_DIR)"
    "$HIVEWATCH_BIN" serve --data-dir "$DATA_DIR" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 "$@" \
        >"$SERVER_LOG" 2>"$SERVER_ERR" &
    SERVER_PID=$!

    GRPC_ADDR=""
    HTTP_ADDR=""
    for ((i = 0; i < 300; i++)); do
        if $need_grpc; then
            GRPC_ADDR="$(hw_bound_addr 'OTLP gRPC')"
        fi
        HTTP_ADDR="$(hw_bound_addr 'OTLP HTTP')"
        if [[ -n "$HTTP_ADDR" ]] && { ! $need_grpc || [[ -n "$GRPC_ADDR" ]]; }; then
            return 0
        fi
        if ! hw_server_alive; then
            echo "$HW_PROG: server exited during startup" >&2
            hw_show_server_logs
            exit 1
        fi
        sleep 0.1
    done
    echo "$HW_PROG: server did not print $what within 30 s" >&2
    hw_show_server_logs
    exit 1
}

# hw_wait_child PID: waits for a child the script started in the background, returning its status. A
# foreground child would defer a signal to the script (bash runs traps only once it exits); this way the
# trap runs at once and the EXIT trap stops the child.
hw_wait_child() {
    local rc=0
    HW_CHILD_PID="$1"
    wait "$HW_CHILD_PID" || rc=$?
    HW_CHILD_PID=""
    return "$rc"
}

# Sends SIGTERM and waits up to $1 seconds, then SIGKILL. Sets STOP_RC.
# shellcheck disable=SC2034 # STOP_RC is read by the script
hw_stop_server() {
    local grace="$1" i
    STOP_RC=""
    if ! hw_server_alive; then
        return 0
    fi
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        hw_server_alive || break
        sleep 0.1
    done
    if hw_server_alive; then
        if $HW_KILL_WARNING; then
            echo "$HW_PROG: server did not exit within ${grace} s of SIGTERM; sending SIGKILL" >&2
        fi
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    STOP_RC=0
    wait "$SERVER_PID" 2>/dev/null || STOP_RC=$?
    SERVER_PID=""
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
hw_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$HW_CHILD_PID" ]]; then
        kill -TERM "$HW_CHILD_PID" 2>/dev/null || true
        wait "$HW_CHILD_PID" 2>/dev/null || true
    fi
    hw_stop_server 5
    local hook
    for hook in "${HW_EXIT_HOOKS[@]}"; do
        "$hook" || true
    done
    rm -rf "$DATA_DIR" "$WORK_DIR"
    exit "$rc"
}
