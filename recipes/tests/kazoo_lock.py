"""kazoo's side of the lock interop tests in kazoo_interop.rs.

Run with a Python that has kazoo (Debian's python3-kazoo):

    kazoo_lock.py HOSTS contend LOCK CRITICAL LOG WORKERS ROUNDS
        WORKERS threads, each on its own session, take kazoo's Lock on LOCK
        ROUNDS times. Inside the lock each creates the ephemeral CRITICAL/holder
        (which fails if anyone else is inside), appends "enter <name>" to the
        file LOG, increments CRITICAL's decimal count by an unversioned read,
        pause and write (an increment is lost if anyone else is inside), and
        appends "exit <name>". Prints "ready" once connected, then starts when
        CRITICAL/go exists.

    kazoo_lock.py HOSTS hold LOCK IDENTIFIER
        Prints the lock's contenders, tries the lock without waiting, then
        waits for it, prints "held", holds it until a line arrives on stdin,
        and releases it.

Every wait is bounded; any failure exits non-zero with the reason on stderr.
"""

import json
import os
import sys
import threading
import time

from kazoo.client import KazooClient

# Longest wait for a lock, a connection or the start signal, in seconds.
PATIENCE = 20.0


def connect(hosts):
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=PATIENCE)
    return client


def say(line):
    print(line, flush=True)


def append(log, line):
    # One write on an O_APPEND descriptor: lines from both languages land
    # whole, in the order they were written.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def contend(hosts, lock_path, critical, log, workers, rounds):
    clients = [connect(hosts) for _ in range(workers)]
    failures = []
    say("ready")
    deadline = time.monotonic() + PATIENCE
    while clients[0].exists(critical + "/go") is None:
        if time.monotonic() > deadline:
            sys.exit("no start signal at %s/go" % critical)
        time.sleep(0.01)

    def work(index, client):
        name = "kazoo-%d" % index
        try:
            for _ in range(rounds):
                lock = client.Lock(lock_path, name)
                if not lock.acquire(timeout=PATIENCE):
                    raise RuntimeError("%s never got the lock" % name)
                try:
                    client.create(critical + "/holder", b"", ephemeral=True)
                    append(log, "enter " + name)
                    data, _ = client.get(critical)
                    time.sleep(0.005)
                    client.set(critical, str(int(data) + 1).encode())
                    append(log, "exit " + name)
                    client.delete(critical + "/holder")
                finally:
                    lock.release()
        except Exception as e:  # reported, and fails the run
            failures.append("%s: %r" % (name, e))

    threads = [
        threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=PATIENCE * rounds)
        if t.is_alive():
            failures.append("a worker is stuck")
    for c in clients:
        c.stop()
        c.close()
    if failures:
        sys.exit("; ".join(failures))
    say("done")


def hold(hosts, lock_path, identifier):
    client = connect(hosts)
    say("contenders " + json.dumps(client.Lock(lock_path, identifier).contenders()))
    say("try %s" % client.Lock(lock_path, identifier).acquire(blocking=False))
    lock = client.Lock(lock_path, identifier)
    say("waiting")
    if not lock.acquire(timeout=PATIENCE):
        sys.exit("never got the lock")
    say("held")
    if not sys.stdin.readline():
        sys.exit("stdin closed while holding")
    lock.release()
    say("released")
    client.stop()
    client.close()


def main(argv):
    hosts, mode = argv[1], argv[2]
    if mode == "contend":
        lock_path, critical, log, workers, rounds = argv[3:8]
        contend(hosts, lock_path, critical, log, int(workers), int(rounds))
    elif mode == "hold":
        hold(hosts, argv[3], argv[4])
    else:
        sys.exit("unknown mode %r" % mode)


if __name__ == "__main__":
    main(sys.argv)
