#!/usr/bin/env bash
# Failover time of Zoo and Apache ZooKeeper 3.8, 3 servers each on loopback:
# kill -9 the leader while kazoo writes, time until writes succeed again.
#
#   scripts/failover.sh [ROUNDS]    (default 3 per system)
#
# Needs the Debian packages zookeeper and python3-kazoo (scripts/setup.sh
# installs them). ZOO_SERVER_BIN=path uses that zoo-server instead of a
# release build.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ -z "${ZOO_SERVER_BIN:-}" ]]; then
    cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" --workspace --bins >&2
    ZOO_SERVER_BIN="$CARGO_TARGET_DIR/release/zoo-server"
fi
exec /usr/bin/python3 "$ZOO_ROOT/scripts/failover.py" "$ZOO_SERVER_BIN" "${1:-3}"
