"""Drives a Zoo server with kazoo, the Python ZooKeeper client, and its
recipes. Run by clients.rs: python3 kazoo_suite.py HOST:PORT. Any failed
check raises, which exits non-zero."""

import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoAuthError, NodeExistsError,
                              NoNodeError, NotEmptyError, RolledBackError)
from kazoo.recipe.barrier import Barrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.security import make_digest_acl

HOSTS = sys.argv[1]


def client():
    zk = KazooClient(hosts=HOSTS, timeout=10)
    zk.start(timeout=10)
    return zk


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def crud(zk):
    check(zk.create("/k", b"v") == "/k", "create")
    data, stat = zk.get("/k")
    check(data == b"v" and stat.version == 0 and stat.dataLength == 1, "get")
    check(zk.set("/k", b"w").version == 1, "set")
    try:
        zk.set("/k", b"x", version=7)
        raise AssertionError("stale version accepted")
    except BadVersionError:
        pass
    try:
        zk.create("/k")
        raise AssertionError("duplicate create")
    except NodeExistsError:
        pass
    zk.create("/k/child")
    try:
        zk.delete("/k")
        raise AssertionError("deleted a parent")
    except NotEmptyError:
        pass
    zk.delete("/k", recursive=True)
    check(zk.exists("/k") is None, "gone")
    try:
        zk.get("/k")
        raise AssertionError("read a deleted node")
    except NoNodeError:
        pass
    zk.ensure_path("/deep/er/path")
    check(zk.exists("/deep/er/path") is not None, "ensure_path")


def ephemerals_and_sequences(zk):
    other = client()
    other.create("/eph", ephemeral=True)
    names = [zk.create("/seq/n-", sequence=True, makepath=True) for _ in range(3)]
    check(names == ["/seq/n-0000000000", "/seq/n-0000000001", "/seq/n-0000000002"], names)
    check(zk.exists("/eph").ephemeralOwner == other.client_id[0], "owner")
    other.stop()
    other.close()
    check(zk.exists("/eph") is None, "ephemeral removed with its session")


def watches(zk):
    fired = []
    done = threading.Event()

    def on(event):
        fired.append((event.type, event.path))
        done.set()

    zk.create("/w", b"0")
    zk.get("/w", watch=on)
    zk.set("/w", b"1")
    check(done.wait(5), "data watch")
    done.clear()
    zk.get_children("/w", watch=on)
    zk.create("/w/c")
    check(done.wait(5), "child watch")
    check(fired == [("CHANGED", "/w"), ("CHILD", "/w")], fired)

    # DataWatch re-reads after each event, so a second write before that
    # re-read would rightly be seen only as its result: each write waits
    # for the previous value to arrive.
    seen = []
    arrived = threading.Condition()

    @zk.DataWatch("/dw")
    def data_watch(data, stat):
        with arrived:
            seen.append(data)
            arrived.notify_all()

    def wait_for(value):
        with arrived:
            check(arrived.wait_for(lambda: value in seen, timeout=5), "DataWatch saw %r" % seen)

    wait_for(None)
    zk.create("/dw", b"a")
    wait_for(b"a")
    zk.set("/dw", b"b")
    wait_for(b"b")
    check(seen == [None, b"a", b"b"], seen)


def transactions(zk):
    zk.create("/t", b"")
    tx = zk.transaction()
    tx.create("/t/a", b"1")
    tx.check("/t", 0)
    tx.set_data("/t", b"x")
    results = tx.commit()
    check(results[0] == "/t/a" and results[1] is True, results)
    tx = zk.transaction()
    tx.create("/t/b")
    tx.check("/t", 0)
    results = tx.commit()
    check(isinstance(results[0], RolledBackError) and isinstance(results[1], BadVersionError), results)
    check(zk.exists("/t/b") is None, "rolled back")


def acls():
    owner = client()
    owner.add_auth("digest", "alice:secret")
    acl = make_digest_acl("alice", "secret", all=True)
    owner.create("/private", b"s", acl=[acl])
    check(owner.get("/private")[0] == b"s", "owner reads")
    stranger = client()
    try:
        stranger.get("/private")
        raise AssertionError("stranger read")
    except NoAuthError:
        pass
    acls_seen, _ = owner.get_acls("/private")
    check(acls_seen[0].id.id == acl.id.id, acls_seen)
    stranger.stop()
    owner.stop()


def recipes(zk):
    # Lock: mutual exclusion across sessions.
    holders = []
    lock_a = Lock(zk, "/lock")
    other = client()
    lock_b = Lock(other, "/lock")
    check(lock_a.acquire(timeout=5), "first lock")
    check(not lock_b.acquire(blocking=False), "second lock excluded")
    got = threading.Event()

    def wait_b():
        lock_b.acquire(timeout=10)
        holders.append("b")
        got.set()

    t = threading.Thread(target=wait_b)
    t.start()
    lock_a.release()
    check(got.wait(10), "waiter took the lock")
    lock_b.release()
    t.join()

    # Counter.
    counter = Counter(zk, "/counter")
    counter += 5
    counter -= 2
    check(counter.value == 3, counter.value)

    # Election: one leader at a time.
    leaders = []
    elected = threading.Event()
    election = Election(zk, "/election", "me")

    def lead():
        leaders.append("me")
        elected.set()

    t = threading.Thread(target=election.run, args=(lead,))
    t.start()
    check(elected.wait(10), "elected")
    t.join(10)
    check(leaders == ["me"], leaders)

    # Barrier.
    barrier = Barrier(zk, "/barrier")
    barrier.create()
    passed = threading.Event()
    t = threading.Thread(target=lambda: (barrier.wait(10), passed.set()))
    t.start()
    check(not passed.wait(0.3), "barrier held")
    barrier.remove()
    check(passed.wait(10), "barrier released")
    t.join()
    other.stop()


def main():
    zk = client()
    crud(zk)
    ephemerals_and_sequences(zk)
    watches(zk)
    transactions(zk)
    acls()
    recipes(zk)
    zk.stop()
    print("kazoo suite: all checks passed")


main()
