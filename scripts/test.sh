#!/usr/bin/env bash
# The test command of the README: every test of the workspace, with cargo-nextest when it is installed, then the
# store-facing tests a second time against Postgres (HIVEWATCH_TEST_STORE=postgres), so that both back-ends pass
# the same tests. The tests need PostgreSQL and Redis: the local ones when they run, otherwise throwaway
# instances that this script starts and removes on exit (see scripts/lib/services.sh). Arguments go to the test
# runner (both runs).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/services.sh source-path=SCRIPTDIR
source scripts/lib/services.sh
ensure_postgres
ensure_redis
ensure_prometheus

# The test binaries whose servers use the default store; the second run points them at Postgres.
STORE_TESTS=(fixtures_replay otel_sdk transcripts cli bad_input durability group_commit hook_client session_states notifications)

# No exec: the EXIT trap of services.sh stops the throwaway services once the tests are done.
rc=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || rc=$?
  filter=""
  for t in "${STORE_TESTS[@]}"; do
    filter+="${filter:+ | }binary($t)"
  done
  echo "test.sh: the store-facing tests again, on Postgres" >&2
  HIVEWATCH_TEST_STORE=postgres cargo nextest run --workspace --no-fail-fast -E "$filter" "$@" || rc=$?
else
  echo "cargo-nextest not found; running cargo test (install it with: cargo install cargo-nextest)" >&2
  cargo test --workspace --no-fail-fast "$@" || rc=$?
  args=()
  for t in "${STORE_TESTS[@]}"; do
    args+=(--test "$t")
  done
  echo "test.sh: the store-facing tests again, on Postgres" >&2
  HIVEWATCH_TEST_STORE=postgres cargo test --no-fail-fast "${args[@]}" "$@" || rc=$?
fi
exit "$rc"
