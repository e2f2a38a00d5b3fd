"""Failover time of Zoo and Apache ZooKeeper, measured the same way.

For each system and round: start a 3-server ensemble on loopback with
ZooKeeper's default timing (tickTime=2000, initLimit=10, syncLimit=5), let
one kazoo client write sequential nodes as fast as it can through all three
addresses, kill -9 the leader, and time from the kill until the next write
is acknowledged. Prints each round and the median per system, and their
ratio. Only writes sent after the kill count. Run through
scripts/failover.sh, which builds zoo-server first.

Usage: failover.py ZOO_SERVER_BINARY [ROUNDS]
"""

import os
import statistics
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble import Ensemble  # noqa: E402


def one_round(system, zoo_bin, base_port):
    ensemble = Ensemble(system, zoo_bin, base_port)
    try:
        for i in range(3):
            ensemble.start(i)
        leader = ensemble.leader()
        zk = KazooClient(
            hosts=ensemble.hosts(),
            timeout=10,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.2),
        )
        zk.start(timeout=30)
        zk.ensure_path("/failover")
        acks = []
        stop = threading.Event()

        def write():
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    zk.create("/failover/n-", b"x", sequence=True)
                    acks.append((sent, time.monotonic()))
                except (ConnectionLoss, SessionExpiredError):
                    time.sleep(0.01)
                except Exception:
                    time.sleep(0.01)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(2)
        killed_at = time.monotonic()
        ensemble.kill(leader)
        deadline = killed_at + 60
        # Only a write sent after the kill counts: one in flight at the kill
        # may have been committed by the old leader.
        def after():
            return [done for sent, done in acks if sent > killed_at]

        while time.monotonic() < deadline and not after():
            time.sleep(0.005)
        first = after()
        stop.set()
        writer.join(timeout=5)
        zk.stop()
        if not first:
            raise RuntimeError(f"{system}: no write succeeded within 60 s of the kill")
        return first[0] - killed_at
    finally:
        ensemble.stop()


def main():
    zoo_bin = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results = {}
    for system, base in (("zoo", 25100), ("zookeeper", 26100)):
        results[system] = []
        for r in range(rounds):
            gap = one_round(system, zoo_bin, base)
            results[system].append(gap)
            print(f"{system:10s} round {r + 1}: writes again {gap * 1000:8.0f} ms after kill -9 of the leader",
                  flush=True)
    zoo = statistics.median(results["zoo"])
    zk = statistics.median(results["zookeeper"])
    print()
    print(f"median failover: Zoo {zoo * 1000:.0f} ms, ZooKeeper {zk * 1000:.0f} ms, Zoo/ZK {zoo / zk:.2f}")


if __name__ == "__main__":
    main()
