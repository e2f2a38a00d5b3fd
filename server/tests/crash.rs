//! Crash tests with real processes: a write load from many clients, the
//! server killed with SIGKILL at random moments or aborted at named crash
//! points inside the log and snapshot paths, then restarted on the same data
//! directory. Every acknowledged write must be there, and the recovered tree
//! (snapshot + log) must equal a replay of the whole log from an empty tree.
//!
//! `ZOO_CRASH_ITERATIONS` sets the number of random kills (default 3);
//! `scripts/crash-soak.sh` runs many.

mod support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use support::{server_command, wait_up, RawClient};
use zoo_server::storage::{recover, RocksStorage, Storage};
use zoo_server::testkit::free_port;
use zoo_server::tree::Tree;
use zoo_wire::{CreateMode, ErrorCode, RequestBody, SetDataRequest};

const WRITERS: usize = 8;

/// Starts zoo-server on `dir`; `crash_at` arms a crash point.
fn start(dir: &Path, port: u16, crash_at: Option<&str>) -> Child {
    let mut command = server_command(dir, port, "tickTime=200\nsnapCount=300\nmaxClientCnxns=0\n");
    command.stderr(Stdio::null());
    if let Some(point) = crash_at {
        command.env("ZOO_CRASH_AT", point);
    }
    command.spawn().unwrap()
}

/// What the writers were told succeeded: path → data, and each writer's
/// last acknowledged counter value.
#[derive(Default)]
struct Acked {
    created: BTreeMap<String, Vec<u8>>,
    counters: BTreeMap<usize, i64>,
}

/// Writes until the server goes away: creates of unique nodes and
/// versioned sets of a per-writer counter.
async fn writer(port: u16, w: usize, acked: Arc<Mutex<Acked>>) {
    let Ok(mut c) = tokio::time::timeout(
        Duration::from_secs(5),
        RawClient::connect(([127, 0, 0, 1], port).into()),
    )
    .await
    else {
        return;
    };
    let counter = format!("/crash/counter-{w}");
    let mut version = match c.create(&counter, b"0", CreateMode::Persistent).await {
        Ok(_) => 0,
        Err(ErrorCode::NodeExists) => match c.get(&counter, false).await {
            Ok((_, stat)) => stat.version,
            Err(_) => return,
        },
        Err(_) => return,
    };
    let mut value = acked.lock().unwrap().counters.get(&w).copied().unwrap_or(0);
    // Unique per run of this writer, so that no create collides with an
    // earlier cycle's.
    let run: u32 = rand::random();
    for i in 0.. {
        let path = format!("/crash/w{w}-{run:08x}-{i:06}");
        let data = format!("{w}:{i}").into_bytes();
        let created = tokio::time::timeout(
            Duration::from_secs(5),
            c.create(&path, &data, CreateMode::Persistent),
        )
        .await;
        match created {
            Ok(Ok(actual)) => {
                acked.lock().unwrap().created.insert(actual, data);
            }
            _ => return,
        }
        if i % 4 == 0 {
            let next = value + 1;
            let set = RequestBody::SetData(SetDataRequest {
                path: counter.clone(),
                data: Some(Bytes::from(next.to_string())),
                version,
            });
            match tokio::time::timeout(Duration::from_secs(5), c.call(set)).await {
                Ok((header, Some(zoo_wire::ResponseBody::SetData(r))))
                    if header.err == ErrorCode::Ok =>
                {
                    version = r.stat.version;
                    value = next;
                    acked.lock().unwrap().counters.insert(w, value);
                }
                _ => return,
            }
        }
    }
}

/// Checks every acknowledged write against the restarted server.
async fn check_acked(port: u16, acked: &Acked) {
    let mut c = RawClient::connect(([127, 0, 0, 1], port).into()).await;
    for (path, data) in &acked.created {
        match c.get(path, false).await {
            Ok((got, _)) => assert_eq!(got.as_deref(), Some(&data[..]), "{path}"),
            Err(e) => panic!("acknowledged create of {path} lost: {e:?}"),
        }
    }
    for (w, value) in &acked.counters {
        let (got, _) = c.get(&format!("/crash/counter-{w}"), false).await.unwrap();
        let got: i64 = String::from_utf8(got.unwrap().to_vec())
            .unwrap()
            .parse()
            .unwrap();
        // The set after the last acknowledged one may have been durable too.
        assert!(
            got == *value || got == value + 1,
            "counter {w}: acknowledged {value}, found {got}"
        );
    }
}

/// The recovered tree equals a replay of the whole log from nothing.
fn check_replay(data_dir: &Path) {
    let storage = RocksStorage::open_read_only(&data_dir.join("zoo-db"), None).unwrap();
    let recovered = recover(&*storage).unwrap().replay();
    let mut full = Tree::new();
    let mut after = 0;
    loop {
        let page = storage.read_log(after, 10_000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.zxid;
        for txn in &page {
            full.apply(txn, &mut Vec::new());
        }
    }
    assert_eq!(recovered.tree.last_zxid(), full.last_zxid());
    assert_eq!(recovered.tree.node_count(), full.node_count());
    for (path, node) in full.paths() {
        assert_eq!(recovered.tree.get(path), Some(node), "{path}");
    }
}

/// One cycle: load, crash (by `kill` after `kill_after`, or at the armed
/// crash point), restart, check.
async fn cycle(
    dir: &Path,
    acked: &Arc<Mutex<Acked>>,
    crash_at: Option<&str>,
    kill_after: Duration,
) {
    let port = free_port();
    let mut child = start(dir, port, crash_at);
    wait_up(port, &mut child).await;
    {
        let mut c = RawClient::connect(([127, 0, 0, 1], port).into()).await;
        let _ = c.create("/crash", b"", CreateMode::Persistent).await;
    }
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(port, w, Arc::clone(acked))))
        .collect();
    let died = match crash_at {
        Some(point) => {
            // The crash point must fire by itself.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert_eq!(
                        status.signal(),
                        Some(6),
                        "{point}: expected an abort at the crash point, got {status}"
                    );
                    break status;
                }
                assert!(Instant::now() < deadline, "crash point {point} never fired");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        None => {
            tokio::time::sleep(kill_after).await;
            child.kill().unwrap();
            child.wait().unwrap()
        }
    };
    assert!(!died.success());
    for w in writers {
        let _ = w.await;
    }
    let before = acked.lock().unwrap().created.len();
    let port = free_port();
    let mut child = start(dir, port, None);
    wait_up(port, &mut child).await;
    let snapshot = {
        let acked = acked.lock().unwrap();
        Acked {
            created: acked.created.clone(),
            counters: acked.counters.clone(),
        }
    };
    check_acked(port, &snapshot).await;
    child.kill().unwrap();
    child.wait().unwrap();
    check_replay(&dir.join("data"));
    eprintln!(
        "crash at {}: {before} acknowledged creates, all present",
        crash_at.unwrap_or("a random moment")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_at_random_moments() {
    let iterations: usize = std::env::var("ZOO_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    for _ in 0..iterations {
        let kill_after = Duration::from_millis(rng.gen_range(100..1500));
        cycle(dir.path(), &acked, None, kill_after).await;
    }
    assert!(
        !acked.lock().unwrap().created.is_empty(),
        "the load wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_crashes_at_named_points() {
    let dir = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    // Snapshot points count from 2: the first snapshot of a restarted
    // server is the one it takes at start, after replaying the log.
    for point in [
        "log.before_write:200",
        "log.after_sync:300",
        "snapshot.before_write:2",
        "snapshot.after_write:2",
    ] {
        cycle(dir.path(), &acked, Some(point), Duration::ZERO).await;
    }
    let storage = RocksStorage::open_read_only(&dir.path().join("data/zoo-db"), None).unwrap();
    assert!(
        storage.snapshots().unwrap().len() >= 2,
        "the load was long enough to take snapshots"
    );
}
