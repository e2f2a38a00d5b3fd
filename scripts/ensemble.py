"""Three-server ensembles of Zoo or Apache ZooKeeper on loopback, for the
comparison scripts (failover.py, compare-ensemble.py).

Both run with ZooKeeper's default timing (tickTime=2000, initLimit=10,
syncLimit=5), each server in its own temporary directory.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from four_letter import mode as srvr_mode  # noqa: E402

ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"


class Ensemble:
    def __init__(self, system, zoo_bin, base_port):
        self.system = system
        self.zoo_bin = zoo_bin
        self.dir = tempfile.mkdtemp(prefix=f"zoo-ensemble-{system}-")
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

    def hosts(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)
