#!/usr/bin/env bash
# Runs the same zoo-bench workloads against Zoo and Apache ZooKeeper 3.8
# (Debian's package), alternately, on this machine, and prints both figures
# and the ratio Zoo / ZooKeeper.
#   scripts/compare-zookeeper.sh [SECONDS]     default 5 s per run
# Fresh data directories each time; ZooKeeper runs with its default fsync on.
# Zoo's commit is still in memory (no log yet), so write figures compare an
# in-memory Zoo with a durable ZooKeeper until the storage issue lands.
set -euo pipefail
source "$(dirname "$0")/env.sh"
seconds="${1:-5}"
bash "$ZOO_ROOT/scripts/setup.sh"
cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" -p zoo-server -p zoo-client --bins >&2
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

zoo_port=22801 zk_port=22802
mkdir -p "$work/zoo" "$work/zk/data"
printf 'tickTime=2000\nclientPort=%s\ndataDir=%s\n' "$zoo_port" "$work/zoo" > "$work/zoo/zoo.cfg"
RUST_LOG=warn "$bin/zoo-server" "$work/zoo/zoo.cfg" 2>"$work/zoo.log" & pids+=($!)
printf 'tickTime=2000\nclientPort=%s\nclientPortAddress=127.0.0.1\ndataDir=%s\nadmin.enableServer=false\n' \
    "$zk_port" "$work/zk/data" > "$work/zk/zoo.cfg"
java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain \
    "$work/zk/zoo.cfg" >"$work/zk.log" 2>&1 & pids+=($!)
for port in $zoo_port $zk_port; do
    for _ in $(seq 100); do
        [[ "$(echo srvr | nc -q1 127.0.0.1 "$port" 2>/dev/null)" == *Mode* ]] && break
        sleep 0.2
    done
done

run() { # port workload clients in_flight -> "ops p50"
    "$bin/zoo-bench" --connect "127.0.0.1:$1" --workload "$2" --clients "$3" --in-flight "$4" \
        --duration "$seconds" --warmup 1 --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["ops_per_sec"]), r["latency_us"]["p50"])'
}

printf '%-28s %14s %14s %8s\n' "workload" "Zoo" "ZooKeeper" "ratio"
for spec in "read 16 8 ops" "write 16 8 ops" "read 1 1 p50"; do
    read -r workload clients inflight metric <<<"$spec"
    read -r zk_ops zk_p50 <<<"$(run $zk_port "$workload" "$clients" "$inflight")"
    read -r zoo_ops zoo_p50 <<<"$(run $zoo_port "$workload" "$clients" "$inflight")"
    if [[ $metric == ops ]]; then
        printf '%-28s %12s/s %12s/s %8s\n' "$workload ${clients}x$inflight" "$zoo_ops" "$zk_ops" \
            "$(python3 -c "print(f'{$zoo_ops/$zk_ops:.2f}')")"
    else
        printf '%-28s %11sus %11sus %8s\n' "$workload ${clients}x$inflight p50" "$zoo_p50" "$zk_p50" \
            "$(python3 -c "print(f'{$zoo_p50/$zk_p50:.2f}')")"
    fi
done
