#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (entry points in src/fuzzing.rs), one after the other, each for a fixed
# budget, and prints per target what libFuzzer did: executions, executions per second, coverage, corpus, findings.
#
#   scripts/fuzz.sh                       every target, FUZZ_SECONDS (default 120) each
#   scripts/fuzz.sh hook_json redaction   only these
#   FUZZ_SECONDS=600 scripts/fuzz.sh      ten minutes each
#
# Environment: FUZZ_SECONDS (budget per target), FUZZ_SANITIZER (address, the default, or none: about twice the
# executions per second, but no memory-error detection), FUZZ_TIMEOUT (seconds one input may take, default 10).
#
# cargo-fuzz needs nightly flags; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them. It builds into
# fuzz/target, apart from every other build. Each target starts from fuzz/seeds/<target> (committed, with the
# reproducers of past findings named regress-*) and fuzz/corpus/<target> (the working corpus, not committed),
# and adds what it finds to the latter. A crash, panic, timeout or out-of-memory stops that target and leaves
# its input in fuzz/artifacts/<target>/; the script goes on with the next target and fails at the end.
# Logs: fuzz/logs/<target>.log.
#
# Memory: the server reads bodies of up to 8 MiB (--max-body-bytes). The fuzzed inputs are at most 128 KiB (see
# max_len below), 1/64 of that. -malloc_limit_mb=512 fails any single allocation of 512 MiB or more: from at
# most 128 KiB of input that is an amplification of over 4000 times, where decoding and normalizing legitimately
# build at most about 100 bytes per input byte (an empty embedded protobuf message, 2 bytes on the wire, becomes a
# struct of about 130), so such an allocation can only come from a size read from the input rather than from the
# input itself: an unbounded allocation. -rss_limit_mb=2048 bounds the process as a whole, leaving room for the
# address sanitizer's shadow memory and quarantine (several hundred MiB of its own) on top of the working set.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(otlp_traces_protobuf otlp_logs_protobuf otlp_metrics_protobuf otlp_json hook_json redaction)
SECONDS_EACH="${FUZZ_SECONDS:-120}"
SANITIZER="${FUZZ_SANITIZER:-address}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
export RUSTC_BOOTSTRAP=1

# Longest input per target: room for the largest seed and for the request-level limits that bytes can reach
# (10 000 items of 2 to 3 bytes each, 512 attributes, nesting 64 deep); the 1 MiB value limit is out of reach.
max_len() {
  case "$1" in
    otlp_json) echo 131072 ;;
    redaction) echo 32768 ;;
    *) echo 65536 ;;
  esac
}

if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=("${ALL_TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do
  if [[ ! " ${ALL_TARGETS[*]} " == *" $t "* ]]; then
    echo "fuzz.sh: unknown target $t (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

echo "fuzz.sh: building (sanitizer: $SANITIZER)" >&2
(cd fuzz && cargo fuzz build --sanitizer "$SANITIZER")

mkdir -p fuzz/logs
summary=()
failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/logs/$t.log"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  # `cargo fuzz run` rebuilds when the sources changed: say which sources this target ran on.
  source_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || source_rev+="+changes"
  echo "fuzz.sh: $t for ${SECONDS_EACH}s on $source_rev (log: $log)" >&2
  rc=0
  (cd fuzz && cargo fuzz run --sanitizer "$SANITIZER" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout="$TIMEOUT" \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1) >"$log" 2>&1 || rc=$?
  echo "fuzz.sh: sources $source_rev" >>"$log"
  after=$(find "fuzz/artifacts/$t" -type f | wc -l)
  stat() { grep -E "^stat::$1:" "$log" | tail -1 | awk '{print $2}'; }
  execs=$(stat number_of_executed_units)
  rate=$(stat average_exec_per_sec)
  peak=$(stat peak_rss_mb)
  last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -1 || true)
  ran=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
  found=$((after - before))
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    failed=1
    grep -E "^(==[0-9]+== ?ERROR|thread '.*' panicked|SUMMARY:|artifact_prefix|Test unit written)" "$log" |
      head -5 | sed "s/^/  $t: /" >&2 || true
  fi
  summary+=("$(printf '%-22s %12s %8s %6s %7s %12s %5s %5s %4s %-8s %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "${ran:-?}" "${peak:-?}" "$found" "$([ "$rc" -eq 0 ] && echo ok || echo "exit $rc")" \
    "$source_rev")")
done

echo
printf '%-22s %12s %8s %6s %7s %12s %5s %5s %4s %-8s %s\n' target executions exec/s cov ft corpus secs rssMB new result \
  sources
printf '%s\n' "${summary[@]}"
exit "$failed"
