//! Barriers, counters, queues and the tree cache against a real zoo-server
//! on loopback: a barrier holds its waiters until it is lowered; a double
//! barrier lets nobody start before all have arrived and nobody finish
//! before all are done; concurrent counter updates are each applied exactly
//! once; a queue hands out every item once, oldest first, to competing
//! consumers; a tree cache follows a subtree and reports each change.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tokio::sync::broadcast;
use tokio::time::Instant;
use zoo_client::CreateOptions;
use zoo_recipes::{
    Barrier, CacheEvent, Counter, DoubleBarrier, Encoding, Error, Queue, TreeCache, Versioned,
};
use zoo_wire::CreateMode;

/// A coordinator raises a barrier; four clients wait on it. While it is up
/// none of them gets through (each is parked on a watch of the barrier
/// node); once it is lowered all of them do. A wait with a timeout on a
/// raised barrier gives up with `Timeout`, and a wait on a lowered barrier
/// returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_holds_waiters_until_removed() {
    let server = zoo_server().await;
    let coordinator = client(server.addr).await;
    let barrier = Barrier::new(&coordinator, "/barriers/deploy");
    barrier.set().await.unwrap();
    barrier.set().await.unwrap(); // raising it twice is fine

    // Phase 1: four waiters block on the raised barrier.
    let passed = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for _ in 0..4 {
        let c = client(server.addr).await;
        let passed = passed.clone();
        waiters.push(tokio::spawn(async move {
            let result = Barrier::new(&c, "/barriers/deploy")
                .wait(Some(Duration::from_secs(15)))
                .await;
            passed.fetch_add(1, Ordering::SeqCst);
            result
        }));
    }
    eventually("every waiter watches the barrier", || async {
        watched_paths(server.addr).await.get("/barriers/deploy") == Some(&4)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(passed.load(Ordering::SeqCst), 0, "the barrier is up");

    // Phase 2: a bounded wait gives up.
    let started = Instant::now();
    assert_eq!(
        barrier
            .wait(Some(Duration::from_millis(300)))
            .await
            .unwrap_err(),
        Error::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Phase 3: lowering it lets every waiter through.
    barrier.remove().await.unwrap();
    for waiter in waiters {
        let result = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a waiter goes on once the barrier is down")
            .unwrap();
        assert_eq!(result, Ok(()));
    }
    assert_eq!(passed.load(Ordering::SeqCst), 4);

    // Phase 4: nothing to wait for on a lowered barrier; removing it again
    // is fine.
    let started = Instant::now();
    barrier.wait(Some(Duration::from_secs(5))).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    barrier.remove().await.unwrap();
}

/// Five members, each on its own session, arrive at a double barrier one
/// after the other and then work for different lengths of time. Each counts
/// itself as arrived just before `enter` and as done just before `leave`:
/// whoever `enter` lets in must see all five arrived, and whoever `leave`
/// lets out must see all five done. Afterwards the barrier's directory
/// holds no member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_starts_and_finishes_together() {
    const MEMBERS: usize = 5;
    let server = zoo_server().await;
    let arrived = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let (addr, arrived, done) = (server.addr, arrived.clone(), done.clone());
        members.push(tokio::spawn(async move {
            let c = client(addr).await;
            let barrier = DoubleBarrier::new(&c, "/barriers/round-1", MEMBERS, &format!("m{i}"));
            let timeout = Some(Duration::from_secs(15));
            // Staggered arrival: the last member comes 400 ms after the first.
            tokio::time::sleep(Duration::from_millis(100 * i as u64)).await;
            arrived.fetch_add(1, Ordering::SeqCst);
            barrier.enter(timeout).await.unwrap();
            let arrived_at_entry = arrived.load(Ordering::SeqCst);
            // Work of different lengths: the first member to start is the
            // last to finish.
            tokio::time::sleep(Duration::from_millis(100 * (MEMBERS - i) as u64)).await;
            done.fetch_add(1, Ordering::SeqCst);
            barrier.leave(timeout).await.unwrap();
            let done_at_exit = done.load(Ordering::SeqCst);
            c.close().await;
            (arrived_at_entry, done_at_exit)
        }));
    }
    for (i, member) in members.into_iter().enumerate() {
        let (arrived_at_entry, done_at_exit) =
            tokio::time::timeout(Duration::from_secs(20), member)
                .await
                .expect("the members get through")
                .unwrap();
        assert_eq!(
            arrived_at_entry, MEMBERS,
            "member {i} entered before everyone arrived"
        );
        assert_eq!(
            done_at_exit, MEMBERS,
            "member {i} left before everyone was done"
        );
    }
    let observer = client(server.addr).await;
    assert_eq!(
        observer.get_children("/barriers/round-1").await.unwrap(),
        Vec::<String>::new(),
        "no member (and no `ready`) is left behind"
    );
}

/// Eight clients each add 1 fifty times to one counter. Every add reports
/// the value just before and after it; with each add applied exactly once
/// the final value is 400 and the "after" values are exactly 1..=400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_adds_are_each_applied_once() {
    const CLIENTS: usize = 8;
    const ADDS: usize = 50;
    let server = zoo_server().await;
    let afters = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (addr, afters) = (server.addr, afters.clone());
        tasks.push(tokio::spawn(async move {
            let c = client(addr).await;
            let counter = Counter::new(&c, "/counters/hits");
            for _ in 0..ADDS {
                let (before, after) = counter.add(1).await.unwrap();
                assert_eq!(after, before + 1);
                afters.lock().unwrap().push(after);
            }
            c.close().await;
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(25), task)
            .await
            .expect("the adds finish")
            .unwrap();
    }
    let total = (CLIENTS * ADDS) as i64;
    let reader = client(server.addr).await;
    let counter = Counter::new(&reader, "/counters/hits");
    assert_eq!(counter.value().await.unwrap(), total);
    let mut afters = afters.lock().unwrap().clone();
    afters.sort_unstable();
    assert_eq!(afters, (1..=total).collect::<Vec<_>>());
    // The node holds kazoo's encoding: decimal text.
    assert_eq!(
        reader.get_data("/counters/hits").await.unwrap().0,
        total.to_string().into_bytes()
    );
}

/// `compare_and_set` succeeds only at the version read: a writer whose read
/// is stale loses and changes nothing. A subtraction goes below zero, and a
/// Curator-encoded counter stores four big-endian bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_compare_and_set_refuses_a_stale_version() {
    let server = zoo_server().await;
    let a = client(server.addr).await;
    let b = client(server.addr).await;
    let counter_a = Counter::new(&a, "/counters/cas").default_value(10);
    let counter_b = Counter::new(&b, "/counters/cas").default_value(10);

    let seen_by_a = counter_a.get().await.unwrap();
    assert_eq!(seen_by_a.value, 10, "an empty node holds the default");
    assert_eq!(counter_b.add(5).await.unwrap(), (10, 15));

    assert!(!counter_a.compare_and_set(seen_by_a, 100).await.unwrap());
    assert_eq!(counter_a.value().await.unwrap(), 15, "the stale write lost");

    let fresh = counter_a.get().await.unwrap();
    assert_eq!(
        fresh,
        Versioned {
            value: 15,
            version: seen_by_a.version + 1
        }
    );
    assert!(counter_a.compare_and_set(fresh, 100).await.unwrap());
    assert_eq!(counter_b.value().await.unwrap(), 100);
    assert_eq!(counter_b.add(-150).await.unwrap(), (100, -50));

    let curator = Counter::new(&a, "/counters/curator").encoding(Encoding::Curator);
    assert_eq!(curator.add(258).await.unwrap(), (0, 258));
    assert_eq!(
        a.get_data("/counters/curator").await.unwrap().0,
        258i32.to_be_bytes().to_vec()
    );
}

/// One producer's items come out in the order they were put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_first_in_first_out() {
    let server = zoo_server().await;
    let c = client(server.addr).await;
    let queue = Queue::new(&c, "/queues/fifo");
    assert_eq!(queue.try_take().await.unwrap(), None, "no queue yet");
    for i in 0..20 {
        queue.put(format!("item-{i}").as_bytes()).await.unwrap();
    }
    assert_eq!(queue.len().await.unwrap(), 20);
    for i in 0..20 {
        let item = queue.take(Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!(String::from_utf8(item).unwrap(), format!("item-{i}"));
    }
    assert_eq!(queue.try_take().await.unwrap(), None);
    assert_eq!(
        queue
            .take(Some(Duration::from_millis(200)))
            .await
            .unwrap_err(),
        Error::Timeout
    );
}

/// Four consumers on their own sessions race for the items of two
/// producers, half of them queued before the consumers start and half
/// while they run. Every item is taken exactly once, and each consumer
/// takes one producer's items in the order that producer put them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_items_are_taken_once_by_competing_consumers() {
    const PRODUCERS: usize = 2;
    const PER_PRODUCER: usize = 40;
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;
    let server = zoo_server().await;

    async fn produce(addr: std::net::SocketAddr, producer: usize, items: std::ops::Range<usize>) {
        let c = client(addr).await;
        let queue = Queue::new(&c, "/queues/jobs");
        for i in items {
            queue
                .put(format!("{producer}:{i}").as_bytes())
                .await
                .unwrap();
        }
        c.close().await;
    }

    // Phase 1: half of each producer's items are waiting.
    for producer in 0..PRODUCERS {
        produce(server.addr, producer, 0..PER_PRODUCER / 2).await;
    }

    // Phase 2: consumers race while the producers add the other half.
    let taken = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let (addr, taken) = (server.addr, taken.clone());
        consumers.push(tokio::spawn(async move {
            let c = client(addr).await;
            let queue = Queue::new(&c, "/queues/jobs");
            let mut mine = Vec::new();
            // Each pass takes an item or waits out a short timeout; bounded
            // well beyond what the items need.
            for _ in 0..(TOTAL * 4) {
                if taken.load(Ordering::SeqCst) >= TOTAL {
                    break;
                }
                match queue.take(Some(Duration::from_millis(300))).await {
                    Ok(item) => {
                        taken.fetch_add(1, Ordering::SeqCst);
                        mine.push(String::from_utf8(item).unwrap());
                    }
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("take failed: {e}"),
                }
            }
            c.close().await;
            mine
        }));
    }
    let mut producers = Vec::new();
    for producer in 0..PRODUCERS {
        producers.push(tokio::spawn(produce(
            server.addr,
            producer,
            PER_PRODUCER / 2..PER_PRODUCER,
        )));
    }
    for producer in producers {
        producer.await.unwrap();
    }

    let mut all = Vec::new();
    for consumer in consumers {
        let mine = tokio::time::timeout(Duration::from_secs(20), consumer)
            .await
            .expect("the consumers finish")
            .unwrap();
        for producer in 0..PRODUCERS {
            let order: Vec<usize> = mine
                .iter()
                .filter_map(|item| {
                    let (p, i) = item.split_once(':')?;
                    (p.parse::<usize>().ok()? == producer).then(|| i.parse().unwrap())
                })
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "a consumer took producer {producer}'s items out of order: {order:?}"
            );
        }
        all.extend(mine);
    }
    assert_eq!(all.len(), TOTAL, "every item taken exactly once: {all:?}");
    let distinct: BTreeSet<&String> = all.iter().collect();
    let expected: BTreeSet<String> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |i| format!("{p}:{i}")))
        .collect();
    assert_eq!(distinct, expected.iter().collect::<BTreeSet<_>>());
    let observer = client(server.addr).await;
    assert_eq!(
        Queue::new(&observer, "/queues/jobs").len().await.unwrap(),
        0
    );
}

/// The next cache event, failing the test after five seconds without one.
async fn next_event(events: &mut broadcast::Receiver<CacheEvent>) -> CacheEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a cache event within 5 s")
        .expect("no events missed")
}

/// A cache started on a subtree that does not exist yet follows it being
/// built, changed and torn down by another client, one event per change,
/// each seen in the copy by the time its event arrives; nodes outside the
/// subtree are not copied. Closing the session stops the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_follows_a_subtree() {
    let server = zoo_server().await;
    let writer = client(server.addr).await;
    let reader = client(server.addr).await;
    let persistent = || CreateOptions::new(CreateMode::Persistent);

    let cache = TreeCache::start(&reader, "/app/").await.unwrap();
    assert_eq!(cache.root(), "/app");
    assert!(cache.snapshot().is_empty());
    let mut events = cache.events();

    // Phase 1: the subtree is built.
    writer.create("/app", b"root", persistent()).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Created("/app".into())
    );
    writer.create("/app/a", b"1", persistent()).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Created("/app/a".into())
    );
    writer.create("/app/b", b"", persistent()).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Created("/app/b".into())
    );
    writer
        .create("/app/b/c", b"deep", persistent())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Created("/app/b/c".into())
    );
    writer.create("/apple", b"", persistent()).await.unwrap();
    assert_eq!(cache.children("/app"), ["a", "b"]);
    assert_eq!(cache.children("/app/b"), ["c"]);
    assert_eq!(cache.get("/app/b/c").unwrap().data, b"deep");

    // Phase 2: a change is read at its new value and version.
    writer.set_data("/app/a", b"2", None).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Changed("/app/a".into())
    );
    let a = cache.get("/app/a").unwrap();
    assert_eq!((a.data.as_slice(), a.stat.version), (b"2".as_slice(), 1));

    // Phase 3: deletes, leaves first.
    writer.delete("/app/b/c", None).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Deleted("/app/b/c".into())
    );
    writer.delete("/app/b", None).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        CacheEvent::Deleted("/app/b".into())
    );
    assert_eq!(cache.children("/app"), ["a"]);
    assert_eq!(
        cache.snapshot().keys().collect::<Vec<_>>(),
        ["/app", "/app/a"],
        "/apple is outside the subtree"
    );

    // Phase 4: nothing was reported twice, and the cache stops with the
    // session.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        matches!(
            events.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "one event per change"
    );
    reader.close().await;
    assert_eq!(next_event(&mut events).await, CacheEvent::Stopped);
}
