#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test of
# every crate. Fails on the first failure.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ZOO_ROOT"
bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
