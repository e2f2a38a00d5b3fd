//! Recovery at start: the newest snapshot that verifies, then the log after
//! it, replayed through the same `apply` as live writes.
//!
//! A data directory with data always holds a snapshot (an empty one is written
//! when a directory is first used), so "no usable snapshot" never means "start
//! empty": it is an error that names what is wrong.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::codec::SessionRecord;
use super::snapshot::read_snapshot;
use super::{follows, Storage, StorageError, StorageResult};
use crate::tree::Tree;
use crate::txn::TxnOp;

/// Log entries read per page while replaying.
const REPLAY_PAGE: usize = 10_000;

/// The state rebuilt from storage.
#[derive(Debug)]
pub struct Recovered {
    pub tree: Tree,
    /// Sessions live at the last replayed zxid.
    pub sessions: BTreeMap<i64, SessionRecord>,
    /// The snapshot recovery started from; `None` for a new data directory.
    pub snapshot_zxid: Option<i64>,
    /// Log entries replayed after the snapshot.
    pub replayed: u64,
}

impl Recovered {
    pub fn is_new(&self) -> bool {
        self.snapshot_zxid.is_none()
    }
}

/// Rebuilds the tree and sessions (see the module doc).
pub fn recover(storage: &dyn Storage) -> StorageResult<Recovered> {
    let range = storage.log_range()?;
    let snapshots = storage.snapshots()?;
    if snapshots.is_empty() {
        return match range {
            None => Ok(Recovered {
                tree: Tree::new(),
                sessions: BTreeMap::new(),
                snapshot_zxid: None,
                replayed: 0,
            }),
            Some((first, last)) => Err(StorageError::Corrupt(format!(
                "the log holds zxids {first:#x}..={last:#x} but no snapshot is listed; \
                 refusing to start from an empty tree"
            ))),
        };
    }
    let mut problems = Vec::new();
    let mut base = None;
    for info in snapshots.iter().rev() {
        if let Some((first, _)) = range {
            if first > info.zxid + 1 && !follows(info.zxid, first) {
                problems.push(format!(
                    "snapshot {:#x}: the log starts at {first:#x}, leaving a gap",
                    info.zxid
                ));
                continue;
            }
        }
        match read_snapshot(storage, info) {
            Ok(loaded) => {
                base = Some((info.zxid, loaded));
                break;
            }
            Err(e) => {
                warn!("{e}; trying an older snapshot");
                problems.push(e.to_string());
            }
        }
    }
    let Some((snapshot_zxid, (mut tree, sessions))) = base else {
        return Err(StorageError::Corrupt(format!(
            "no usable snapshot: {}",
            problems.join("; ")
        )));
    };
    let mut sessions: BTreeMap<i64, SessionRecord> =
        sessions.into_iter().map(|s| (s.id, s)).collect();
    info!(
        zxid = format!("{snapshot_zxid:#x}"),
        nodes = tree.node_count(),
        sessions = sessions.len(),
        "snapshot loaded"
    );
    let mut replayed = 0u64;
    let mut last = snapshot_zxid;
    let mut changes = Vec::new();
    loop {
        let page = storage.read_log(last, REPLAY_PAGE)?;
        if page.is_empty() {
            break;
        }
        for txn in page {
            if !follows(last, txn.zxid) {
                return Err(StorageError::Corrupt(format!(
                    "the log jumps from {last:#x} to {:#x}: entries are missing",
                    txn.zxid
                )));
            }
            match &txn.op {
                TxnOp::CreateSession {
                    session_id,
                    timeout_ms,
                    password,
                } => {
                    sessions.insert(
                        *session_id,
                        SessionRecord {
                            id: *session_id,
                            timeout_ms: *timeout_ms,
                            password: *password,
                        },
                    );
                }
                TxnOp::CloseSession { session_id } => {
                    sessions.remove(session_id);
                }
                _ => {}
            }
            changes.clear();
            tree.apply(&txn, &mut changes);
            last = txn.zxid;
            replayed += 1;
        }
    }
    Ok(Recovered {
        tree,
        sessions,
        snapshot_zxid: Some(snapshot_zxid),
        replayed,
    })
}
