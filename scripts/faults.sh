#!/usr/bin/env bash
# Runs the fault tests of the suite and prints what each did to the events: sent, acknowledged, stored, lost,
# duplicated, as the table of docs/RELIABILITY.md. Each test prints one `FAULT-REPORT {json}` line (see
# FaultReport in tests/common/mod.rs); this script only runs them and collects those lines. The kill and
# shutdown tests run twice: on the embedded SQLite store and on Postgres.
#
#   bash scripts/faults.sh            # table on stdout, raw lines in target/faults/reports.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/services.sh source-path=SCRIPTDIR
source scripts/lib/services.sh
ensure_postgres
ensure_redis

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "faults.sh: cargo-nextest is needed (cargo install cargo-nextest)" >&2
  exit 1
fi

out=target/faults
mkdir -p "$out"
: >"$out/reports.jsonl"

run() {
  local log="$out/run-$1.log"
  shift
  echo "faults.sh: $*" >&2
  # --no-capture: the reports are on the tests' stderr. A failing test fails this script, after the table.
  "$@" --no-capture >"$log" 2>&1 || { echo "faults.sh: tests failed, see $log" >&2; rc=1; }
  grep -o 'FAULT-REPORT {.*}' "$log" | sed 's/^FAULT-REPORT //' >>"$out/reports.jsonl" || true
}

rc=0
faults='test(acknowledged_events_survive_kill_9) | test(sigterm_drains_in_flight_requests_and_exits_cleanly)'
run sqlite cargo nextest run --test durability --test slow_clients --test disk_full \
  -E "$faults | binary(slow_clients) | binary(disk_full)"
HIVEWATCH_TEST_STORE=postgres run postgres cargo nextest run --test durability -E "$faults"
run services cargo nextest run --test postgres --test redis_stream \
  -E 'test(postgres_restarted_during_ingest_loses_nothing_acknowledged) | test(redis_stopped_during_ingest_and_restarted_the_stream_catches_up_in_order)'

python3 - "$out/reports.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| fault | store | what was done | sent | acknowledged | stored | lost | duplicated |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['fault']} | {r['store']} | {r['action']} | {r['sent']} | {r['acked']} | {r['stored']} "
          f"| {r['lost']} | {r['duplicated']} |")
EOF
exit "$rc"
