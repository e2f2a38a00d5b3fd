//! Locks, leader election and semaphores against a real zoo-server on
//! loopback: mutual exclusion under many contenders, no herd, release on
//! session expiry, fencing of a stale holder, leadership lost on suspension
//! before a successor can act, timeouts and cancellation.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tokio::time::Instant;
use zoo_client::{CreateOptions, Op};
use zoo_recipes::{Error, LeaderElection, Lock, Loss, Semaphore};
use zoo_wire::CreateMode;

/// Eight clients take the lock five times each. Inside, each creates the
/// ephemeral `/holder` (which fails if another holds the lock too) and does
/// an unversioned read-modify-write of a shared count: with mutual exclusion
/// no increment is lost. Fencing tokens grow with every holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_excludes_many_contenders() {
    let server = zoo_server().await;
    let setup = client(server.addr).await;
    setup
        .create("/count", b"0", CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let addr = server.addr;
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(async move {
            let c = client(addr).await;
            let lock = Lock::new(&c, "/locks/shared").identifier(&format!("w{worker}"));
            for _ in 0..5 {
                let guard = lock.acquire().await.unwrap();
                tokens.lock().unwrap().push(guard.fencing_token());
                c.create("/holder", b"", CreateOptions::new(CreateMode::Ephemeral))
                    .await
                    .expect("nobody else holds the lock");
                let (data, _) = c.get_data("/count").await.unwrap();
                let n: u32 = String::from_utf8(data).unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
                c.set_data("/count", (n + 1).to_string().as_bytes(), None)
                    .await
                    .unwrap();
                c.delete("/holder", None).await.unwrap();
                guard.release().await.unwrap();
            }
            c.close().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (data, _) = setup.get_data("/count").await.unwrap();
    assert_eq!(data, b"40");
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 40);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens grow with each holder: {tokens:?}"
    );
    assert!(setup
        .get_children("/locks/shared")
        .await
        .unwrap()
        .is_empty());
}

/// One holder and six waiters: each waiter watches only the contender just
/// ahead of it, nobody watches the directory, and a release wakes exactly
/// one waiter (the watch count drops by one; a herd would re-register all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_watch_only_their_predecessor() {
    let server = zoo_server().await;
    let holder_client = client(server.addr).await;
    let guard = Lock::new(&holder_client, "/locks/herd")
        .acquire()
        .await
        .unwrap();
    let acquired = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let c = client(server.addr).await;
        let acquired = acquired.clone();
        waiters.push(tokio::spawn(async move {
            let guard = Lock::new(&c, "/locks/herd")
                .identifier(&format!("waiter-{i}"))
                .acquire()
                .await
                .unwrap();
            acquired.fetch_add(1, Ordering::SeqCst);
            // Hold until the test ends.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(guard);
        }));
        // In line one after the other, so the order is known.
        eventually("the waiter is in line", || async {
            holder_client
                .get_children("/locks/herd")
                .await
                .unwrap()
                .len()
                == i + 2
        })
        .await;
    }
    let mut in_line = holder_client.get_children("/locks/herd").await.unwrap();
    in_line.sort_by_key(|n| n[n.len() - 10..].to_string());
    eventually("six watches", || async {
        watched_paths(server.addr).await.values().sum::<usize>() == 6
    })
    .await;
    let watched = watched_paths(server.addr).await;
    let expected: std::collections::BTreeMap<String, usize> = in_line[..6]
        .iter()
        .map(|n| (format!("/locks/herd/{n}"), 1))
        .collect();
    assert_eq!(
        watched, expected,
        "each contender is watched by the one behind it"
    );
    let mntr = four_letter(server.addr, "mntr").await;
    assert!(
        mntr.contains("zk_watch_count\t6\n"),
        "no child watch on the directory:\n{mntr}"
    );
    guard.release().await.unwrap();
    eventually("one waiter takes the lock", || async {
        acquired.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(acquired.load(Ordering::SeqCst), 1, "only one waiter woke");
    assert_eq!(
        watched_paths(server.addr).await.values().sum::<usize>(),
        5,
        "the woken waiter set no new watch, and no other waiter re-registered"
    );
    assert_eq!(
        Lock::new(&holder_client, "/locks/herd")
            .contenders()
            .await
            .unwrap()
            .first()
            .map(String::as_str),
        Some("waiter-0")
    );
    for w in waiters {
        w.abort();
    }
}

/// The holder's connection freezes. Its guard reports the loss at once
/// (suspension); the server expires its session and the waiter gets the
/// lock, with a larger fencing token; a resource that remembers the largest
/// token refuses the stale holder, and so does a multi made conditional on
/// the stale holder's node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_holder_loses_the_lock_and_is_fenced() {
    let server = zoo_server().await;
    let proxy = Proxy::start(server.addr).await;
    let stale_client = client_with_timeout(proxy.addr, Duration::from_millis(1200)).await;
    let stale = Lock::new(&stale_client, "/locks/fenced")
        .acquire()
        .await
        .unwrap();
    let other = client(server.addr).await;
    let waiting = {
        let other = other.clone();
        tokio::spawn(async move {
            let guard = Lock::new(&other, "/locks/fenced").acquire().await.unwrap();
            (Instant::now(), guard)
        })
    };
    eventually("the waiter is in line", || async {
        other.get_children("/locks/fenced").await.unwrap().len() == 2
    })
    .await;
    proxy.freeze();
    let frozen_at = Instant::now();
    let loss = stale.lost().await;
    let lost_at = Instant::now();
    assert_eq!(loss, Loss::Suspended);
    let (acquired_at, fresh) = waiting.await.unwrap();
    assert!(
        lost_at < acquired_at,
        "the stale holder knew ({:?} after the freeze) before the lock moved on ({:?})",
        lost_at - frozen_at,
        acquired_at - frozen_at
    );
    assert!(fresh.fencing_token() > stale.fencing_token());

    // A resource that keeps the largest token it has seen.
    let resource = Mutex::new(i64::MIN);
    let write = |token: i64| {
        let mut highest = resource.lock().unwrap();
        if token < *highest {
            return false;
        }
        *highest = token;
        true
    };
    assert!(write(fresh.fencing_token()));
    assert!(!write(stale.fencing_token()), "the stale token is refused");

    // ZooKeeper refuses a write conditional on the stale holder's node.
    other
        .create("/guarded", b"", CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    let set = |data: &[u8]| Op::SetData {
        path: "/guarded".into(),
        data: data.to_vec(),
        version: None,
    };
    let refused = other.multi(vec![stale.check_op(), set(b"stale")]).await;
    assert_eq!(refused.unwrap_err(), (0, zoo_client::Error::NoNode));
    other
        .multi(vec![fresh.check_op(), set(b"fresh")])
        .await
        .unwrap();
    assert_eq!(other.get_data("/guarded").await.unwrap().0, b"fresh");
    proxy.thaw();
}

/// Two candidates; the leader's connection freezes. Its `lead` is cut short
/// with `Suspended` before the other candidate is elected (which waits for
/// the server to expire the old leader's session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_is_lost_on_suspension_before_a_successor_leads() {
    let server = zoo_server().await;
    let proxy = Proxy::start(server.addr).await;
    let first = client_with_timeout(proxy.addr, Duration::from_millis(1500)).await;
    let second = client(server.addr).await;
    let election_a = LeaderElection::new(&first, "/election").identifier("a");
    let election_b = LeaderElection::new(&second, "/election").identifier("b");
    let leadership = election_a.campaign().await.unwrap();
    assert_eq!(election_b.try_lead().await.unwrap().map(|_| ()), None);
    let successor = tokio::spawn(async move {
        let leadership = election_b.campaign().await.unwrap();
        (Instant::now(), leadership)
    });
    eventually("b is a candidate", || async {
        election_a.candidates().await.unwrap() == ["a", "b"]
    })
    .await;
    assert_eq!(election_a.leader().await.unwrap().as_deref(), Some("a"));
    let ticks = AtomicUsize::new(0);
    let work = async {
        loop {
            ticks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let freeze = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.freeze();
    };
    let (outcome, ()) = tokio::join!(leadership.lead(work), freeze);
    let stopped_at = Instant::now();
    assert_eq!(outcome.unwrap_err(), Loss::Suspended);
    assert!(
        ticks.load(Ordering::SeqCst) > 0,
        "the leader worked while it led"
    );
    let (elected_at, new_leadership) = successor.await.unwrap();
    assert!(
        stopped_at < elected_at,
        "the old leader stopped before the new one started"
    );
    assert!(new_leadership.fencing_token() > leadership.fencing_token());
    proxy.thaw();
}

/// `try_acquire` does not wait; `acquire_timeout` gives up and removes its
/// node; dropping a waiting `acquire` withdraws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_timeout_and_cancel_leave_no_node_behind() {
    let server = zoo_server().await;
    let a = client(server.addr).await;
    let b = client(server.addr).await;
    let held = Lock::new(&a, "/locks/t").acquire().await.unwrap();
    let lock_b = Lock::new(&b, "/locks/t");
    assert!(lock_b.try_acquire().await.unwrap().is_none());
    let started = Instant::now();
    assert_eq!(
        lock_b
            .acquire_timeout(Duration::from_millis(300))
            .await
            .unwrap_err(),
        Error::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    tokio::select! {
        _ = lock_b.acquire() => panic!("the lock is held"),
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    eventually("only the holder's node is left", || async {
        a.get_children("/locks/t").await.unwrap().len() == 1
    })
    .await;
    drop(held);
    eventually("a dropped guard releases", || async {
        a.get_children("/locks/t").await.unwrap().is_empty()
    })
    .await;
    let again = lock_b.try_acquire().await.unwrap();
    assert!(again.is_some());
}

/// Readers share; a writer waits for the readers ahead of it, and a reader
/// behind the writer waits for the writer (but not the reverse: kazoo#649).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_lock_orders_readers_and_writers() {
    let server = zoo_server().await;
    let c = client(server.addr).await;
    let r1 = Lock::read(&c, "/rw").acquire().await.unwrap();
    let r2 = Lock::read(&c, "/rw").acquire().await.unwrap();
    let writer = {
        let c = c.clone();
        tokio::spawn(async move { Lock::write(&c, "/rw").acquire().await.unwrap() })
    };
    eventually("the writer waits", || async {
        c.get_children("/rw").await.unwrap().len() == 3
    })
    .await;
    let late_reader = Lock::read(&c, "/rw");
    assert!(
        late_reader.try_acquire().await.unwrap().is_none(),
        "behind a writer"
    );
    r1.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!writer.is_finished(), "one reader still holds");
    r2.release().await.unwrap();
    let w = writer.await.unwrap();
    assert!(late_reader.try_acquire().await.unwrap().is_none());
    w.release().await.unwrap();
    assert!(late_reader.try_acquire().await.unwrap().is_some());
}

/// Eight clients share a semaphore of three leases: never more than three
/// hold at once, and every acquisition completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_bounds_concurrent_holders() {
    let server = zoo_server().await;
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (addr, holding, most, done) =
            (server.addr, holding.clone(), most.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let c = client(addr).await;
            let pool = Semaphore::new(&c, "/sem", 3).identifier(&format!("h{i}"));
            for _ in 0..3 {
                let lease = pool.acquire().await.unwrap();
                let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(pool.holders().await.unwrap().len() <= 3);
                tokio::time::sleep(Duration::from_millis(20)).await;
                holding.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 24);
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "at most three at once, saw {most}");
}
