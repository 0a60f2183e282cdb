#!/usr/bin/env bash
# The test command of the README: every test of the workspace, with cargo-nextest when it is installed.
# The tests need PostgreSQL and Redis: the local ones when they run, otherwise throwaway instances that
# this script starts and removes on exit (see scripts/lib/services.sh). Arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/services.sh source-path=SCRIPTDIR
source scripts/lib/services.sh
ensure_postgres
ensure_redis

# No exec: the EXIT trap of services.sh stops the throwaway services once the tests are done.
rc=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || rc=$?
else
  echo "cargo-nextest not found; running cargo test (install it with: cargo install cargo-nextest)" >&2
  cargo test --workspace --no-fail-fast "$@" || rc=$?
fi
exit "$rc"
