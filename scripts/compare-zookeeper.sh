#!/usr/bin/env bash
# Runs the same zoo-bench workloads against Zoo and Apache ZooKeeper 3.8
# (Debian's package), alternately, on this machine, and prints both figures
# and the ratio Zoo / ZooKeeper.
#   scripts/compare-zookeeper.sh [SECONDS] [ZNODES]
# SECONDS per run (default 5); ZNODES for the memory and restart rows
# (default 1000000 znodes of 100 bytes; 0 skips them).
# Fresh data directories each time; both servers sync their logs (fsync on).
set -euo pipefail
source "$(dirname "$0")/env.sh"
seconds="${1:-5}"
znodes="${2:-1000000}"
bash "$ZOO_ROOT/scripts/setup.sh"
cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" --workspace --bins >&2
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

zoo_port=22801 zk_port=22802
mkdir -p "$work/zoo" "$work/zk/data"
printf 'tickTime=2000\nclientPort=%s\ndataDir=%s\nmaxClientCnxns=0\n' "$zoo_port" "$work/zoo" > "$work/zoo/zoo.cfg"
RUST_LOG=warn "$bin/zoo-server" "$work/zoo/zoo.cfg" 2>"$work/zoo.log" & pids+=($!)
printf 'tickTime=2000\nclientPort=%s\nclientPortAddress=127.0.0.1\ndataDir=%s\nadmin.enableServer=false\nmaxClientCnxns=0\n' \
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
for spec in "read 16 8 ops" "write 16 8 ops" "write 1 1 ops" "write 64 1 ops" "read 1 1 p50"; do
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

[[ "$znodes" -gt 0 ]] || exit 0

# Memory and restart time with $znodes znodes of 100 bytes, one server at a time.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

serving() { [[ "$(echo srvr | nc -q1 127.0.0.1 "$1" 2>/dev/null)" == *Zxid* ]]; }
rss_mb() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status"; }
start_zoo() { RUST_LOG=warn "$bin/zoo-server" "$work/zoo/zoo.cfg" >/dev/null 2>>"$work/zoo.log" & echo $!; }
start_zk() {
    java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain \
        "$work/zk/zoo.cfg" >>"$work/zk.log" 2>&1 & echo $!
}
# The servers run in command substitutions, so they are not this shell's
# children: `wait` cannot see them; poll until the process is gone.
stop() { kill -TERM "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.05; done; }
measure() { # name start-fn port -> "rss_mb restart_ms rss_after_restart_mb"
    local pid t0 t1 rss
    pid=$($2); pids+=("$pid")
    until serving "$3"; do sleep 0.1; done
    "$bin/zoo-bench" --connect "127.0.0.1:$3" --prepare-only --keys "$znodes" --value-size 100 --root /m >&2
    sleep 2
    rss=$(rss_mb "$pid")
    stop "$pid"
    t0=$(date +%s%N)
    pid=$($2); pids+=("$pid")
    until serving "$3"; do sleep 0.02; done
    t1=$(date +%s%N)
    echo "$rss $(( (t1 - t0) / 1000000 )) $(rss_mb "$pid")"
    stop "$pid"
}
rm -rf "$work/zoo/zoo-db" "$work/zk/data"; mkdir -p "$work/zk/data"
read -r zoo_rss zoo_restart zoo_rss2 <<<"$(measure zoo start_zoo $zoo_port)"
read -r zk_rss zk_restart zk_rss2 <<<"$(measure zk start_zk $zk_port)"
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf '%-28s %12sMB %12sMB %8s\n' "RSS, $znodes znodes" "$zoo_rss" "$zk_rss" "$(ratio "$zoo_rss" "$zk_rss")"
printf '%-28s %12sMB %12sMB %8s\n' "RSS after restart" "$zoo_rss2" "$zk_rss2" "$(ratio "$zoo_rss2" "$zk_rss2")"
printf '%-28s %12sms %12sms %8s\n' "restart, $znodes znodes" "$zoo_restart" "$zk_restart" "$(ratio "$zoo_restart" "$zk_restart")"
