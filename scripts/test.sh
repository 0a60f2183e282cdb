#!/usr/bin/env bash
# The test command of the README: every test of the workspace, with cargo-nextest when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "cargo-nextest not found; running cargo test (install it with: cargo install cargo-nextest)" >&2
  exec cargo test --workspace --no-fail-fast "$@"
fi
