"""Throughput of 3-server ensembles: Zoo against Apache ZooKeeper 3.8.

Starts a 3-server ensemble of each (one at a time, ZooKeeper's default
timing), loads it with zoo-bench, and prints each workload for both and
their ratio: writes through the leader and through a follower (forwarded,
committed by a quorum, every one synced to disk), reads served by a
follower, one change fanned out to 16 watchers at a follower, sessions
opened and closed at a follower (each a transaction of the quorum), and
512 KiB writes through the leader. Then draws the table as a PNG with
`zoo-bench chart`. Run through scripts/compare-ensemble.sh.

Usage: compare-ensemble.py ZOO_SERVER ZOO_BENCH [SECONDS] [CHART]
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble import Ensemble  # noqa: E402

# (label, workload, clients, in flight, which server, unit)
WORKLOADS = [
    ("write via leader 16x8", "write", 16, 8, "leader", "ops/s"),
    ("write via follower 16x8", "write", 16, 8, "follower", "ops/s"),
    ("write via leader 1x1", "write", 1, 1, "leader", "ops/s"),
    ("read at a follower 16x8", "read", 16, 8, "follower", "ops/s"),
    ("fan-out to 16 at follower", "watch-fanout", 16, 1, "follower", "rounds/s"),
    ("session storm 16 follower", "session-storm", 16, 1, "follower", "sessions/s"),
    ("large-write 512K via leader", "large-write", 4, 2, "leader", "ops/s"),
]


def bench(zoo_bench, port, workload, clients, in_flight, seconds, prepare=False):
    """ops/s of one run, or None (and why, on stderr) if zoo-bench failed."""
    # zoo-bench's default keys: 1000 of 100 bytes, 16 of 512 KiB for the
    # large workloads (a thousand of those would not fit ZooKeeper's heap).
    cmd = [zoo_bench, "--connect", f"127.0.0.1:{port}"]
    if prepare:
        cmd.append("--prepare-only")
    else:
        cmd += ["--workload", workload, "--clients", str(clients),
                "--in-flight", str(in_flight), "--duration", str(seconds),
                # A fifth of the run, at most a second: the 1 s smoke of
                # server/tests/scripts.rs stays quick.
                "--warmup", str(min(1.0, seconds / 5)), "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"zoo-bench on port {port} failed: {run.stderr.strip()}", file=sys.stderr)
        return None
    return 0 if prepare else json.loads(run.stdout)["ops_per_sec"]


def measure(system, zoo_server, zoo_bench, base_port, seconds):
    """ops/s per workload; a run that fails (say, the ensemble elected a new
    leader meanwhile) is tried again once on the servers as they are then."""
    ensemble = Ensemble(system, zoo_server, base_port)
    try:
        for i in range(3):
            ensemble.start(i)
        results = {}
        leaderless = False
        for label, workload, clients, in_flight, at, _ in [("prepare", None, 0, 0, "leader", "")] + WORKLOADS:
            ops = None
            for _attempt in range(0 if leaderless else 2):
                try:
                    leader = ensemble.leader()
                except RuntimeError as e:
                    # Zoo must always recover; a ZooKeeper that does not is
                    # shown as failed runs rather than stopping the table.
                    if system == "zoo":
                        raise
                    print(e, file=sys.stderr)
                    leaderless = True
                    break
                follower = next(i for i in range(3) if i != leader)
                port = ensemble.client_ports[leader if at == "leader" else follower]
                ops = bench(zoo_bench, port, workload, clients, in_flight, seconds,
                            prepare=label == "prepare")
                if ops is not None:
                    break
            results[label] = ops
        return results
    finally:
        ensemble.stop()


def cell(ops):
    return f"{ops:10.0f}/s" if ops is not None else f"{'failed':>12s}"


def chart(zoo_bench, zoo, zk, seconds, path):
    """Draws the table as a PNG with `zoo-bench chart`; whether it did."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv") as table:
        table.write("workload\tZoo\tZooKeeper\tunit\n")
        for label, *_, unit in WORKLOADS:
            a, b = ("-" if v is None else f"{v:.0f}" for v in (zoo[label], zk[label]))
            table.write(f"{label}\t{a}\t{b}\t{unit}\n")
        table.flush()
        run = subprocess.run(
            [zoo_bench, "chart", "--input", table.name, "--output", path,
             "--title", f"Zoo vs Apache ZooKeeper 3.8, 3 servers, {seconds} s runs"],
            capture_output=True, text=True)
    if run.returncode != 0:
        print(f"zoo-bench chart failed: {run.stderr.strip()}", file=sys.stderr)
        return False
    return True


def main():
    zoo_server, zoo_bench = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    chart_path = sys.argv[4] if len(sys.argv) > 4 else "compare-ensemble.png"
    zoo = measure("zoo", zoo_server, zoo_bench, 27100, seconds)
    zk = measure("zookeeper", zoo_server, zoo_bench, 28100, seconds)
    print(f"{'3 servers':28s} {'Zoo':>12s} {'ZooKeeper':>12s} {'ratio':>8s}")
    for label, *_ in WORKLOADS:
        a, b = zoo[label], zk[label]
        ratio = f"{a / b:8.2f}" if a and b else f"{'-':>8s}"
        print(f"{label:28s} {cell(a)} {cell(b)} {ratio}")
    if chart(zoo_bench, zoo, zk, seconds, chart_path):
        print(f"chart: {os.path.abspath(chart_path)}")
    else:
        sys.exit("drawing the chart failed")
    if None in zoo.values():
        sys.exit("a Zoo run failed")


if __name__ == "__main__":
    main()
