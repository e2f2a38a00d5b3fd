#!/usr/bin/env bash
# Builds and starts a single-node Zoo server. With no argument it uses the
# embedded default configuration; otherwise the given zoo.cfg.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" --workspace --bins
exec "$CARGO_TARGET_DIR/release/zoo-server" "$@"
