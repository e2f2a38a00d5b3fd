#!/usr/bin/env bash
# Runs the wire fuzz targets (libFuzzer through cargo-fuzz), not part of CI.
#   scripts/fuzz.sh [MINUTES_PER_TARGET] [TARGET...]   default: 5 minutes, all targets
# cargo-fuzz needs unstable compiler flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them. Crashes land in wire/fuzz/artifacts/<target>/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
minutes="${1:-5}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(frames requests replies)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$ZOO_ROOT/wire/fuzz"
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    echo "fuzz: $t for $minutes minute(s)"
    cargo fuzz run "$t" -- -max_total_time=$((minutes * 60)) -max_len=4096 -print_final_stats=1
done
