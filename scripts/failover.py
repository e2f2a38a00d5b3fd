"""Failover time of Zoo and Apache ZooKeeper, measured the same way.

For each system and round: start a 3-server ensemble on loopback with
ZooKeeper's default timing (tickTime=2000, initLimit=10, syncLimit=5), let
one kazoo client write sequential nodes as fast as it can through all three
addresses, kill -9 the leader, and time from the kill until the next write
is acknowledged. Prints each round and the median per system, and their
ratio. Only writes sent after the kill count. Run through scripts/failover.sh, which builds zoo-server first.

Usage: failover.py ZOO_SERVER_BINARY [ROUNDS]
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from four_letter import mode as srvr_mode  # noqa: E402

ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"


class Ensemble:
    def __init__(self, system, zoo_bin, base_port):
        self.system = system
        self.zoo_bin = zoo_bin
        self.dir = tempfile.mkdtemp(prefix=f"failover-{system}-")
        self.client_ports = [base_port + i for i in range(3)]
        servers = "".join(
            f"server.{i + 1}=127.0.0.1:{base_port + 100 + i}:{base_port + 200 + i}\n"
            for i in range(3)
        )
        self.procs = {}
        for i in range(3):
            d = os.path.join(self.dir, f"s{i + 1}")
            os.makedirs(os.path.join(d, "data"))
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write(f"{i + 1}\n")
            with open(os.path.join(d, "zoo.cfg"), "w") as f:
                f.write(
                    "tickTime=2000\ninitLimit=10\nsyncLimit=5\n"
                    f"dataDir={d}/data\nclientPort={self.client_ports[i]}\n"
                    "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=srvr\n"
                    + ("admin.enableServer=false\n" if system == "zookeeper" else "")
                    + servers
                )

    def start(self, i):
        d = os.path.join(self.dir, f"s{i + 1}")
        cfg = os.path.join(d, "zoo.cfg")
        log = open(os.path.join(d, "server.log"), "w")
        if self.system == "zoo":
            cmd = [self.zoo_bin, cfg]
            env = dict(os.environ, RUST_LOG="warn")
        else:
            cmd = [
                "java", "-Xmx512m", "-cp", ZK_CLASSPATH,
                "-Dzookeeper.log.dir=" + d,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg,
            ]
            env = dict(os.environ)
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)

    def leader(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            modes = {i: srvr_mode(self.client_ports[i]) for i in self.procs}
            leaders = [i for i, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and all(m in ("leader", "follower") for m in modes.values()):
                return leaders[0]
            time.sleep(0.1)
        raise RuntimeError(f"{self.system}: no leader elected; see {self.dir}")

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()
        del self.procs[i]

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def one_round(system, zoo_bin, base_port):
    ensemble = Ensemble(system, zoo_bin, base_port)
    try:
        for i in range(3):
            ensemble.start(i)
        leader = ensemble.leader()
        hosts = ",".join(f"127.0.0.1:{p}" for p in ensemble.client_ports)
        zk = KazooClient(
            hosts=hosts,
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
