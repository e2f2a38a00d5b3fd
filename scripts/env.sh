# Sourced by the other scripts: one cargo build directory per machine, shared
# by every clone, so that dependencies (RocksDB above all) build once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zoo/target}"
ZOO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ZOO_ROOT
