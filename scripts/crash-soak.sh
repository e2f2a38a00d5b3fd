#!/usr/bin/env bash
# Many kill -9 / restart cycles of the crash test: a write load from many
# clients, the server killed at random moments, every acknowledged write
# checked after each restart and the recovered tree compared with a replay
# of the whole log. Usage: scripts/crash-soak.sh [iterations] (default 50).
set -euo pipefail
source "$(dirname "$0")/env.sh"
iterations="${1:-50}"
ZOO_CRASH_ITERATIONS="$iterations" cargo test --locked --manifest-path "$ZOO_ROOT/Cargo.toml" \
    --workspace --test crash -- --nocapture --test-threads 1
