"""Writes through kazoo to an ensemble while the test kills its leader.

Usage: kazoo_failover.py HOSTS SECONDS

Creates sequential nodes under /failover for SECONDS, retrying through
connection loss, and prints "ack PATH" for every create the ensemble
acknowledged, then "done N". A create interrupted by connection loss may or
may not have happened; it is not printed.
"""

import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry


def main():
    hosts, seconds = sys.argv[1], float(sys.argv[2])
    zk = KazooClient(
        hosts=hosts,
        timeout=10,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=0.5),
    )
    zk.start(timeout=30)
    zk.ensure_path("/failover")
    print("started", flush=True)
    acked = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            path = zk.create("/failover/n-", str(acked).encode(), sequence=True)
        except (ConnectionLoss, SessionExpiredError):
            time.sleep(0.1)
            continue
        acked += 1
        print("ack", path, flush=True)
    zk.stop()
    print("done", acked, flush=True)


if __name__ == "__main__":
    main()
