"""Throughput of 3-server ensembles: Zoo against Apache ZooKeeper 3.8.

Starts a 3-server ensemble of each (one at a time, ZooKeeper's default
timing), loads it with zoo-bench, and prints each workload for both and
their ratio: writes through the leader and through a follower (forwarded,
committed by a quorum, every one synced to disk), and reads served by a
follower. Run through scripts/compare-ensemble.sh.

Usage: compare-ensemble.py ZOO_SERVER ZOO_BENCH [SECONDS]
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble import Ensemble  # noqa: E402

# (label, workload, clients, in flight, which server)
WORKLOADS = [
    ("write via leader 16x8", "write", 16, 8, "leader"),
    ("write via follower 16x8", "write", 16, 8, "follower"),
    ("write via leader 1x1", "write", 1, 1, "leader"),
    ("read at a follower 16x8", "read", 16, 8, "follower"),
]


def bench(zoo_bench, port, workload, clients, in_flight, seconds, prepare=False):
    """ops/s of one run, or None (and why, on stderr) if zoo-bench failed."""
    cmd = [zoo_bench, "--connect", f"127.0.0.1:{port}", "--keys", "1000"]
    if prepare:
        cmd.append("--prepare-only")
    else:
        cmd += ["--workload", workload, "--clients", str(clients),
                "--in-flight", str(in_flight), "--duration", str(seconds),
                "--warmup", "1", "--json"]
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
        for label, workload, clients, in_flight, at in [("prepare", None, 0, 0, "leader")] + WORKLOADS:
            for _attempt in range(2):
                leader = ensemble.leader()
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


def main():
    zoo_server, zoo_bench = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    zoo = measure("zoo", zoo_server, zoo_bench, 27100, seconds)
    zk = measure("zookeeper", zoo_server, zoo_bench, 28100, seconds)
    print(f"{'3 servers':28s} {'Zoo':>12s} {'ZooKeeper':>12s} {'ratio':>8s}")
    for label, *_ in WORKLOADS:
        a, b = zoo[label], zk[label]
        ratio = f"{a / b:8.2f}" if a and b else f"{'-':>8s}"
        print(f"{label:28s} {cell(a)} {cell(b)} {ratio}")
    if None in zoo.values():
        sys.exit("a Zoo run failed")


if __name__ == "__main__":
    main()
