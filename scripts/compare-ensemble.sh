#!/usr/bin/env bash
# Throughput of 3-server ensembles, Zoo against Apache ZooKeeper 3.8, on
# loopback: writes through the leader and through a follower, reads at a
# follower; watch fan-out, session storm and 512 KiB writes. The same table
# as a bar chart goes to a PNG.
#
#   scripts/compare-ensemble.sh [SECONDS] [CHART]
#
# SECONDS per workload (default 5); CHART the PNG to write (default
# compare-ensemble.png in the current directory).
#
# Needs the Debian zookeeper package (scripts/setup.sh installs it).
# ZOO_SERVER_BIN and ZOO_BENCH_BIN use those binaries instead of a release
# build.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ -z "${ZOO_SERVER_BIN:-}" || -z "${ZOO_BENCH_BIN:-}" ]]; then
    cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" --workspace --bins >&2
fi
exec python3 "$ZOO_ROOT/scripts/compare-ensemble.py" \
    "${ZOO_SERVER_BIN:-$CARGO_TARGET_DIR/release/zoo-server}" \
    "${ZOO_BENCH_BIN:-$CARGO_TARGET_DIR/release/zoo-bench}" "${1:-5}" \
    "${2:-compare-ensemble.png}"
