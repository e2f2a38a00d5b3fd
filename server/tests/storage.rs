//! Storage on real disks: the conformance suite against RocksDB and the
//! in-memory storage, damage on disk (flipped bytes, truncation, a missing
//! snapshot) and what the server does about it, restarts that keep data and
//! sessions, and the inspection subcommand.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{server_command, wait_up, RawClient};
use zoo_server::storage::{
    conformance, recover, write_snapshot, MemoryStorage, RocksStorage, SnapshotSource, Storage,
};
use zoo_server::testkit::free_port;
use zoo_server::tree::Tree;
use zoo_server::txn::{Txn, TxnOp};
use zoo_wire::{Acl, CreateMode};

const BIN: &str = env!("CARGO_BIN_EXE_zoo-server");

#[test]
fn memory_storage_keeps_the_contract() {
    let storage = MemoryStorage::new();
    conformance::run(|| Arc::new(storage.clone()));
}

#[test]
fn rocksdb_storage_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run(|| RocksStorage::open(dir.path(), None).unwrap());
}

#[test]
fn rocksdb_storage_keeps_the_contract_with_a_separate_wal_dir() {
    let dir = tempfile::tempdir().unwrap();
    let wal = tempfile::tempdir().unwrap();
    conformance::run(|| RocksStorage::open(dir.path(), Some(wal.path())).unwrap());
    let wal_files = std::fs::read_dir(wal.path()).unwrap().count();
    assert!(wal_files > 0, "the write-ahead log went to dataLogDir");
}

fn create(zxid: i64) -> Arc<Txn> {
    Arc::new(Txn {
        zxid,
        time_ms: zxid,
        session_id: 1,
        cxid: 0,
        op: TxnOp::Create {
            path: format!("/n{zxid}"),
            data: Some(Bytes::from(vec![b'x'; 100])),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
        },
    })
}

/// A storage with the initial snapshot and `n` logged creates.
fn populate(storage: &dyn Storage, n: i64) {
    write_snapshot(
        storage,
        &SnapshotSource {
            zxid: 0,
            nodes: Tree::new().nodes(),
            sessions: vec![],
        },
    )
    .unwrap();
    for z in 1..=n {
        storage.append(&[create(z)]).unwrap();
    }
}

#[test]
fn a_damaged_log_entry_is_named_and_refused() {
    let storage = MemoryStorage::new();
    populate(&storage, 10);
    assert!(storage.corrupt_log_entry(7));
    let err = recover(&storage).unwrap_err().to_string();
    assert!(
        err.contains("log entry 0x7") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn a_damaged_snapshot_falls_back_to_an_older_one_or_is_refused() {
    let storage = MemoryStorage::new();
    populate(&storage, 10);
    let mut tree = Tree::new();
    for txn in storage.read_log(0, 5).unwrap() {
        tree.apply(&txn, &mut Vec::new());
    }
    write_snapshot(
        &storage,
        &SnapshotSource {
            zxid: 5,
            nodes: tree.nodes(),
            sessions: vec![],
        },
    )
    .unwrap();
    assert!(storage.corrupt_snapshot_chunk(5, 0));
    // The older snapshot and the full log still rebuild everything.
    let recovered = recover(&storage).unwrap().replay();
    assert_eq!(recovered.snapshot_zxid, Some(0));
    assert_eq!(recovered.tree.last_zxid(), 10);
    // Once the log before the damaged snapshot is gone, nothing can.
    storage.purge_before(6).unwrap();
    let err = recover(&storage).unwrap_err().to_string();
    assert!(
        err.contains("no usable snapshot") && err.contains("snapshot 0x5 chunk 0"),
        "{err}"
    );
}

fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    // The one holding the log entries is the largest.
    files.sort_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()));
    files
}

/// A data directory left by a server killed with SIGKILL after `n`
/// acknowledged creates `/n0..`: the entries are in RocksDB's write-ahead log.
async fn crashed_data_dir(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, mut c) = start_and_connect(dir.path(), free_port()).await;
    for i in 0..n {
        c.create(&format!("/n{i}"), &[b'x'; 100], CreateMode::Persistent)
            .await
            .unwrap();
    }
    server.kill().unwrap();
    server.wait().unwrap();
    dir
}

#[tokio::test]
async fn flipped_bytes_in_the_rocksdb_log_stop_the_open() {
    let dir = crashed_data_dir(200).await;
    let db = dir.path().join("data/zoo-db");
    let wal = wal_files(&db).pop().expect("a write-ahead log file");
    let mut bytes = std::fs::read(&wal).unwrap();
    assert!(bytes.len() > 20_000, "the entries are in the WAL");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&wal, &bytes).unwrap();
    let result = RocksStorage::open(&db, None).and_then(|s| recover(&*s).map(|_| ()));
    let err = result.expect_err("damage in the middle of the log is not ignored");
    assert!(err.to_string().to_lowercase().contains("corrupt"), "{err}");
    // The binary refuses to start on it, and says why.
    let stderr = refused_start(dir.path()).await;
    assert!(stderr.to_lowercase().contains("corrupt"), "{stderr}");
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_rest_kept() {
    let dir = crashed_data_dir(50).await;
    let db = dir.path().join("data/zoo-db");
    let wal = wal_files(&db).pop().unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    // Cut into the last record, as a crash during its write would.
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(len - 20).unwrap();
    drop(file);
    let storage = RocksStorage::open(&db, None).unwrap();
    let recovered = recover(&*storage).unwrap().replay();
    for i in 0..49 {
        assert!(recovered.tree.get(&format!("/n{i}")).is_some(), "/n{i}");
    }
    assert!(
        recovered.tree.get("/n49").is_none(),
        "the torn record is dropped"
    );
}

fn start_binary(dir: &Path, port: u16) -> std::process::Child {
    server_command(
        dir,
        port,
        "tickTime=500\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n",
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Starts the server and connects once it serves.
async fn start_and_connect(dir: &Path, port: u16) -> (std::process::Child, RawClient) {
    let mut server = start_binary(dir, port);
    wait_up(port, &mut server).await;
    (
        server,
        RawClient::connect(([127, 0, 0, 1], port).into()).await,
    )
}

/// Starts the server on `dir` expecting it to refuse; returns what it said.
async fn refused_start(dir: &Path) -> String {
    let server = start_binary(dir, free_port());
    let out = tokio::task::spawn_blocking(move || server.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success(), "the server started on damaged data");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_restart_keeps_data_and_sessions_shorter_than_their_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_binary(dir.path(), port);
    wait_up(port, &mut server).await;
    let mut c = RawClient::connect_with(([127, 0, 0, 1], port).into(), 0, vec![0; 16], 3000)
        .await
        .unwrap();
    let (session_id, password) = (c.session_id, c.password.clone());
    c.create("/kept", b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/kept/eph", b"e", CreateMode::Ephemeral)
        .await
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    let port = free_port();
    let (mut server, mut other) = start_and_connect(dir.path(), port).await;
    let (data, _) = other.get("/kept", false).await.unwrap();
    assert_eq!(data.as_deref(), Some(&b"v1"[..]));
    // The session is resumed with its id and password; its ephemeral stayed.
    let resumed =
        RawClient::connect_with(([127, 0, 0, 1], port).into(), session_id, password, 3000)
            .await
            .expect("the session survived the restart");
    assert_eq!(resumed.session_id, session_id);
    assert!(other.get("/kept/eph", false).await.is_ok());
    // Once it expires, its ephemeral goes.
    drop(resumed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while other.get("/kept/eph", false).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the ephemeral outlived its session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // Inspection, beside the stopped server.
    let inspect = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("inspect")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let summary = inspect(&[]);
    assert!(summary.contains("log: zxid 0x100000001 .."), "{summary}");
    assert!(summary.contains("snapshots:"), "{summary}");
    let log = inspect(&["log"]);
    assert!(log.contains("create /kept dataLength=2"), "{log}");
    assert!(log.contains("createSession"), "{log}");
    assert!(
        log.contains(&format!("closeSession {session_id:#x}")),
        "{log}"
    );
    let snapshot = inspect(&["snapshot", "0"]);
    assert!(snapshot.contains("/zookeeper/quota"), "{snapshot}");
}

#[tokio::test]
async fn a_missing_snapshot_is_refused_never_started_empty() {
    let dir = crashed_data_dir(1).await;
    {
        let storage = RocksStorage::open(&dir.path().join("data/zoo-db"), None).unwrap();
        for s in storage.snapshots().unwrap() {
            storage.delete_snapshot(s.zxid).unwrap();
        }
    }
    let stderr = refused_start(dir.path()).await;
    assert!(
        stderr.contains("no snapshot is listed") && stderr.contains("refusing to start"),
        "{stderr}"
    );
}
