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
    cmd = [zoo_bench, "--connect", f"127.0.0.1:{port}", "--keys", "1000"]
    if prepare:
        cmd.append("--prepare-only")
    else:
        cmd += ["--workload", workload, "--clients", str(clients),
                "--in-flight", str(in_flight), "--duration", str(seconds),
                "--warmup", "1", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return None if prepare else json.loads(out)["ops_per_sec"]


def measure(system, zoo_server, zoo_bench, base_port, seconds):
    ensemble = Ensemble(system, zoo_server, base_port)
    try:
        for i in range(3):
            ensemble.start(i)
        leader = ensemble.leader()
        follower = next(i for i in range(3) if i != leader)
        ports = {"leader": ensemble.client_ports[leader],
                 "follower": ensemble.client_ports[follower]}
        bench(zoo_bench, ports["leader"], None, 0, 0, 0, prepare=True)
        return {label: bench(zoo_bench, ports[at], workload, clients, in_flight, seconds)
                for label, workload, clients, in_flight, at in WORKLOADS}
    finally:
        ensemble.stop()


def main():
    zoo_server, zoo_bench = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    zoo = measure("zoo", zoo_server, zoo_bench, 27100, seconds)
    zk = measure("zookeeper", zoo_server, zoo_bench, 28100, seconds)
    print(f"{'3 servers':28s} {'Zoo':>12s} {'ZooKeeper':>12s} {'ratio':>8s}")
    for label, *_ in WORKLOADS:
        print(f"{label:28s} {zoo[label]:10.0f}/s {zk[label]:10.0f}/s {zoo[label] / zk[label]:8.2f}")


if __name__ == "__main__":
    main()
