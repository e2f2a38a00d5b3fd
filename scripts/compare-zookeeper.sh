#!/usr/bin/env bash
# Runs the same zoo-bench workloads against Zoo and Apache ZooKeeper 3.8
# (Debian's package), alternately, on this machine, and prints both figures
# and the ratio Zoo / ZooKeeper; the same table as a bar chart goes to a PNG.
#   scripts/compare-zookeeper.sh [SECONDS] [ZNODES] [CHART]
# SECONDS per run (default 5); ZNODES for the memory and restart rows
# (default 1000000 znodes of 100 bytes; 0 skips them); CHART the PNG to
# write (default compare-zookeeper.png in the current directory).
# Workloads: reads and writes of 100-byte values, watch fan-out (one change,
# 16 watchers), session storm (sessions opened and closed), 512 KiB values.
# Fresh data directories each time; both servers sync their logs (fsync on).
# CPU/op rows: the server process's user and system CPU time per operation.
# ZOO_SERVER_BIN and ZOO_BENCH_BIN use those binaries instead of a release
# build.
set -euo pipefail
source "$(dirname "$0")/env.sh"
seconds="${1:-5}"
znodes="${2:-1000000}"
chart="${3:-compare-zookeeper.png}"
bash "$ZOO_ROOT/scripts/setup.sh"
if [[ -z "${ZOO_SERVER_BIN:-}" || -z "${ZOO_BENCH_BIN:-}" ]]; then
    cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" --workspace --bins >&2
fi
zoo_server="${ZOO_SERVER_BIN:-$CARGO_TARGET_DIR/release/zoo-server}"
zoo_bench="${ZOO_BENCH_BIN:-$CARGO_TARGET_DIR/release/zoo-bench}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # Gone before their directories are: a server still shutting down
    # writes into them. At most 10 s each.
    for p in "${pids[@]}"; do
        for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    done
    rm -rf "$work"
}
trap cleanup EXIT

zoo_port=22801 zk_port=22802
mkdir -p "$work/zoo" "$work/zk/data"
printf 'tickTime=2000\nclientPort=%s\ndataDir=%s\nmaxClientCnxns=0\n' "$zoo_port" "$work/zoo" > "$work/zoo/zoo.cfg"
RUST_LOG=warn "$zoo_server" "$work/zoo/zoo.cfg" 2>"$work/zoo.log" & pids+=($!)
zoo_pid=$!
printf 'tickTime=2000\nclientPort=%s\nclientPortAddress=127.0.0.1\ndataDir=%s\nadmin.enableServer=false\nmaxClientCnxns=0\n' \
    "$zk_port" "$work/zk/data" > "$work/zk/zoo.cfg"
java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain \
    "$work/zk/zoo.cfg" >"$work/zk.log" 2>&1 & pids+=($!)
zk_pid=$!
for port in $zoo_port $zk_port; do
    for _ in $(seq 100); do
        [[ "$(echo srvr | nc -N -w 5 127.0.0.1 "$port" 2>/dev/null)" == *Mode* ]] && break
        sleep 0.2
    done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # port pid workload clients in_flight -> "ops p50 cpu_us_per_op", or "- - -" if the run failed
    local out bench t0 t1
    out="$work/bench.json"
    "$zoo_bench" --connect "127.0.0.1:$1" --workload "$3" --clients "$4" --in-flight "$5" \
        --duration "$seconds" --warmup 1 --json >"$out" & bench=$!
    # The server's CPU time over the measured part of the run (after the
    # warmup second; the sessions' closing at the end counts too, a few ms).
    sleep 1
    t0=$(cpu_ticks "$2")
    if wait "$bench"; then
        t1=$(cpu_ticks "$2")
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); us=float(sys.argv[2])*1e6/float(sys.argv[3])
print(round(r["ops_per_sec"]), r["latency_us"]["p50"], round(us / max(r["ok"], 1), 1))' \
            "$out" "$((t1 - t0))" "$(getconf CLK_TCK)"
    else
        echo "zoo-bench $3 on port $1 failed: $(cat "$out" 2>/dev/null || echo no report)" >&2
        echo "- - -"
    fi
}

# The table, also written as TSV for the chart: label, Zoo, ZooKeeper, unit.
table="$work/table.tsv"
printf 'workload\tZoo\tZooKeeper\tunit\n' >"$table"
ratio() { python3 -c "import sys; a, b = sys.argv[1:]; print(f'{float(a)/float(b):.2f}' if '-' not in (a, b) and float(b) else '-')" "$1" "$2"; }
row() { # label zoo zookeeper unit
    local suffix="$4"
    [[ $4 == */s ]] && suffix=/s
    printf "%-28s %$((14 - ${#suffix}))s%s %$((14 - ${#suffix}))s%s %8s\n" "$1" "$2" "$suffix" "$3" "$suffix" "$(ratio "$2" "$3")"
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$table"
}
finish() {
    "$zoo_bench" chart --input "$table" --output "$chart" \
        --title "Zoo vs Apache ZooKeeper 3.8, one server, ${seconds} s runs"
    echo "chart: $(realpath "$chart")"
}

printf '%-28s %14s %14s %8s\n' "workload" "Zoo" "ZooKeeper" "ratio"
# workload clients in_flight rows (ops: throughput; p50: median latency;
# cpu: the server's CPU time per operation)
for spec in "read 16 8 ops,cpu" "write 16 8 ops,cpu" "write 1 1 ops" "write 64 1 ops,cpu" "read 1 1 p50" \
    "watch-fanout 16 1 ops,p50" "session-storm 16 1 ops" "large-write 4 2 ops" "large-read 4 2 ops"; do
    read -r workload clients inflight metrics <<<"$spec"
    read -r zk_ops zk_p50 zk_cpu <<<"$(run $zk_port "$zk_pid" "$workload" "$clients" "$inflight")"
    read -r zoo_ops zoo_p50 zoo_cpu <<<"$(run $zoo_port "$zoo_pid" "$workload" "$clients" "$inflight")"
    case $workload in
        watch-fanout) label="fan-out to $clients watchers" unit=rounds/s ;;
        session-storm) label="session storm $clients loops" unit=sessions/s ;;
        large-*) label="$workload 512K ${clients}x$inflight" unit=ops/s ;;
        *) label="$workload ${clients}x$inflight" unit=ops/s ;;
    esac
    if [[ $metrics == *ops* ]]; then row "$label" "$zoo_ops" "$zk_ops" "$unit"; fi
    if [[ $metrics == *p50* ]]; then row "$label p50" "$zoo_p50" "$zk_p50" us; fi
    if [[ $metrics == *cpu* ]]; then row "$label CPU/op" "$zoo_cpu" "$zk_cpu" us; fi
done

if [[ "$znodes" -le 0 ]]; then
    finish
    exit 0
fi

# Memory and restart time with $znodes znodes of 100 bytes, one server at a time.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# -N: nc returns as soon as the server closes after its answer (with -q1 it
# would wait a second more, and that second would count as restart time).
serving() { [[ "$(echo srvr | nc -N -w 5 127.0.0.1 "$1" 2>/dev/null)" == *Zxid* ]]; }
rss_mb() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status"; }
start_zoo() { RUST_LOG=warn "$zoo_server" "$work/zoo/zoo.cfg" >/dev/null 2>>"$work/zoo.log" & echo $!; }
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
    "$zoo_bench" --connect "127.0.0.1:$3" --prepare-only --keys "$znodes" --value-size 100 --root /m >&2
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
row "RSS, $znodes znodes" "$zoo_rss" "$zk_rss" MB
row "RSS after restart" "$zoo_rss2" "$zk_rss2" MB
row "restart, $znodes znodes" "$zoo_restart" "$zk_restart" ms
finish
