//! One conformance suite for every `Storage`: the module contract, checked
//! step by step, with a reopen (what a restart after a crash sees) between
//! steps. Tests run it against `MemoryStorage` and `RocksStorage`.

use std::sync::Arc;

use bytes::Bytes;
use zoo_wire::Acl;

use super::{purge, recover, write_snapshot, Epochs, SessionRecord, SnapshotSource, Storage};
use crate::tree::Tree;
use crate::txn::{Txn, TxnOp};

fn create(zxid: i64, path: &str) -> Arc<Txn> {
    Arc::new(Txn {
        zxid,
        time_ms: 1_000 + zxid,
        session_id: 5,
        cxid: zxid as i32,
        op: TxnOp::Create {
            path: path.to_string(),
            data: Some(Bytes::from(format!("value {zxid}"))),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
        },
    })
}

fn zxids(txns: &[Txn]) -> Vec<i64> {
    txns.iter().map(|t| t.zxid).collect()
}

/// Runs the suite. `open` must return a handle on the same storage each
/// time, as a process restarting on the same data directory would see it;
/// the previous handle is dropped first.
pub fn run<S: Storage + 'static>(mut open: impl FnMut() -> Arc<S>) {
    let mut storage = open();
    assert_eq!(storage.log_range().unwrap(), None, "a new storage is empty");
    assert_eq!(storage.epochs().unwrap(), Epochs::default());
    assert!(storage.snapshots().unwrap().is_empty());
    assert!(storage.read_log(0, 10).unwrap().is_empty());

    // Append in batches; read back all, from the middle, and with a limit.
    let batch1: Vec<_> = (1..=3).map(|z| create(z, &format!("/n{z}"))).collect();
    let batch2: Vec<_> = (4..=10).map(|z| create(z, &format!("/n{z}"))).collect();
    storage.append(&batch1).unwrap();
    storage.append(&batch2).unwrap();
    let all = storage.read_log(0, 100).unwrap();
    assert_eq!(zxids(&all), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        all[0], *batch1[0],
        "entries read back equal what was written"
    );
    assert_eq!(zxids(&storage.read_log(4, 3).unwrap()), vec![5, 6, 7]);
    assert!(storage.read_log(10, 5).unwrap().is_empty());
    assert_eq!(storage.log_range().unwrap(), Some((1, 10)));

    // A restart sees every returned append.
    drop(storage);
    storage = open();
    assert_eq!(storage.log_range().unwrap(), Some((1, 10)));
    assert_eq!(storage.read_log(0, 100).unwrap(), all);

    // Truncate (ZAB's TRUNC) and go on appending after the cut.
    storage.truncate_after(7).unwrap();
    assert_eq!(storage.log_range().unwrap(), Some((1, 7)));
    let epoch2 = 2i64 << 32;
    storage
        .append(&[create(epoch2 + 1, "/e2a"), create(epoch2 + 2, "/e2b")])
        .unwrap();
    drop(storage);
    storage = open();
    assert_eq!(
        zxids(&storage.read_log(0, 100).unwrap()),
        vec![1, 2, 3, 4, 5, 6, 7, epoch2 + 1, epoch2 + 2]
    );

    // Epochs are kept across a restart.
    let epochs = Epochs {
        accepted: 3,
        current: 2,
    };
    storage.set_epochs(epochs).unwrap();
    drop(storage);
    storage = open();
    assert_eq!(storage.epochs().unwrap(), epochs);

    // Snapshots: written, listed, read back into the same tree; purge keeps
    // the newest and the log after the oldest kept one.
    let mut tree = Tree::new();
    for txn in storage.read_log(0, 5).unwrap() {
        tree.apply(&txn, &mut Vec::new());
    }
    let session = SessionRecord {
        id: 5,
        timeout_ms: 10_000,
        password: [7; 16],
    };
    let source = SnapshotSource {
        zxid: 5,
        nodes: tree.nodes(),
        sessions: vec![session.clone()],
    };
    let info = write_snapshot(&*storage, &source).unwrap();
    assert_eq!((info.zxid, info.nodes, info.sessions), (5, 9, 1));
    assert!(info.chunks >= 1);
    let older = write_snapshot(
        &*storage,
        &SnapshotSource {
            zxid: 0,
            nodes: Tree::new().nodes(),
            sessions: vec![],
        },
    )
    .unwrap();
    drop(storage);
    storage = open();
    let listed = storage.snapshots().unwrap();
    assert_eq!(listed, vec![older, info.clone()], "oldest first");
    let (loaded, sessions) = super::read_snapshot(&*storage, &info).unwrap();
    assert_eq!(sessions, vec![session]);
    for (path, node) in tree.paths() {
        assert_eq!(loaded.get(path), Some(node), "{path} after a snapshot");
    }
    assert_eq!(loaded.node_count(), tree.node_count());

    // Recovery = newest snapshot + the log after it.
    let recovered = recover(&*storage).unwrap();
    assert_eq!(recovered.snapshot_zxid, Some(5));
    let tail: Vec<i64> = recovered.log.iter().map(|t| t.zxid).collect();
    assert_eq!(tail, vec![6, 7, epoch2 + 1, epoch2 + 2]);
    assert_eq!(recovered.tree.last_zxid(), 5, "the log is not applied yet");
    let recovered = recovered.replay();
    assert_eq!(recovered.tree.last_zxid(), epoch2 + 2);
    assert!(recovered.tree.get("/e2b").is_some() && recovered.tree.get("/n7").is_some());
    assert!(
        recovered.tree.get("/n8").is_none(),
        "truncated entries stay gone"
    );
    assert_eq!(recovered.sessions.len(), 1);

    assert_eq!(purge(&*storage, 1).unwrap(), 1);
    drop(storage);
    storage = open();
    assert_eq!(storage.snapshots().unwrap(), vec![info.clone()]);
    assert_eq!(storage.log_range().unwrap(), Some((6, epoch2 + 2)));
    let again = recover(&*storage).unwrap().replay();
    assert_eq!(again.tree.last_zxid(), epoch2 + 2);

    // Purge before a zxid keeps the rest.
    storage.purge_before(7).unwrap();
    assert_eq!(storage.log_range().unwrap(), Some((7, epoch2 + 2)));
    storage.delete_snapshot(info.zxid).unwrap();
    drop(storage);
    storage = open();
    assert!(storage.snapshots().unwrap().is_empty());
    let refused = recover(&*storage).unwrap_err().to_string();
    assert!(
        refused.contains("no snapshot"),
        "a log without a snapshot is refused, not started empty: {refused}"
    );
}
