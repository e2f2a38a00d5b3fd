#!/usr/bin/env bash
# A Zoo ensemble on this machine, one process per server on 127.0.0.1.
#
#   scripts/cluster.sh start [N] [DIR]   build, then start N servers (default 3)
#                                        under DIR (default ./cluster)
#   scripts/cluster.sh status [DIR]      each server's mode (leader, follower…)
#   scripts/cluster.sh stop [DIR]        stop them (SIGTERM)
#   scripts/cluster.sh kill ID [DIR]     kill -9 server ID
#   scripts/cluster.sh restart ID [DIR]  start server ID again
#
# Server i listens for clients on 2180+i, for its peers on 2887+i, and
# reserves 3887+i as its election port (Zoo carries the election on the
# peer port). Logs go to DIR/sI/server.log; data to DIR/sI/data.
# ZOO_SERVER_BIN=path uses that zoo-server binary instead of building one.
set -euo pipefail
source "$(dirname "$0")/env.sh"

command=${1:-}
shift || true

server_bin() {
    echo "${ZOO_SERVER_BIN:-$CARGO_TARGET_DIR/release/zoo-server}"
}

start_one() {
    local dir=$1 id=$2
    local s="$dir/s$id"
    nohup "$(server_bin)" "$s/zoo.cfg" >>"$s/server.log" 2>&1 &
    echo $! >"$s/pid"
    echo "server $id: pid $(cat "$s/pid"), client port $((2180 + id))"
}

srvr() {
    python3 "$ZOO_ROOT/scripts/four_letter.py" "$1" srvr
}

case "$command" in
start)
    n=${1:-3}
    dir=${2:-cluster}
    if ! [[ "$n" =~ ^[0-9]+$ ]] || ((n < 1 || n > 9)); then
        echo "N must be between 1 and 9" >&2
        exit 2
    fi
    if [[ -z "${ZOO_SERVER_BIN:-}" ]]; then
        cargo build --release --locked --manifest-path "$ZOO_ROOT/Cargo.toml" --workspace --bins
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    servers=""
    for id in $(seq 1 "$n"); do
        servers+="server.$id=127.0.0.1:$((2887 + id)):$((3887 + id))"$'\n'
    done
    for id in $(seq 1 "$n"); do
        s="$dir/s$id"
        mkdir -p "$s/data"
        echo "$id" >"$s/data/myid"
        cat >"$s/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$s/data
clientPort=$((2180 + id))
clientPortAddress=127.0.0.1
4lw.commands.whitelist=srvr,stat,mntr,ruok,conf,cons,envi,wchs
$servers
EOF
        start_one "$dir" "$id"
    done
    echo "connect with: 127.0.0.1:2181$(for id in $(seq 2 "$n"); do printf ',127.0.0.1:%d' $((2180 + id)); done)"
    ;;
status)
    dir=${1:-cluster}
    for s in "$dir"/s*; do
        id=${s##*/s}
        mode=$(srvr $((2180 + id)) | sed -n 's/^Mode: //p')
        if [[ -z "$mode" ]]; then
            if [[ -f "$s/pid" ]] && kill -0 "$(cat "$s/pid")" 2>/dev/null; then
                mode="running, not serving (electing or without a quorum)"
            else
                mode="down"
            fi
        fi
        echo "server $id: $mode"
    done
    ;;
stop)
    dir=${1:-cluster}
    for s in "$dir"/s*; do
        [[ -f "$s/pid" ]] && kill "$(cat "$s/pid")" 2>/dev/null || true
        rm -f "$s/pid"
    done
    ;;
kill)
    id=${1:?server id}
    dir=${2:-cluster}
    kill -9 "$(cat "$dir/s$id/pid")"
    rm -f "$dir/s$id/pid"
    ;;
restart)
    id=${1:?server id}
    dir=${2:-cluster}
    dir=$(cd "$dir" && pwd)
    start_one "$dir" "$id"
    ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
