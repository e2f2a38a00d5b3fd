//! Recovery at start: the newest snapshot that verifies, then the log after
//! it, checked entry by entry.
//!
//! A data directory with data always holds a snapshot (an empty one is written
//! when a directory is first used), so "no usable snapshot" never means "start
//! empty": it is an error that names what is wrong.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{info, warn};

use super::codec::SessionRecord;
use super::snapshot::read_snapshot;
use super::{epoch_of, follows, Epochs, Storage, StorageError, StorageResult};
use crate::tree::Tree;
use crate::txn::{SessionEffect, Txn};

/// Log entries read per page while replaying.
const REPLAY_PAGE: usize = 10_000;

/// What a data directory holds: the newest snapshot that verifies, the log
/// after it (checked, not yet applied) and ZAB's epochs.
///
/// The log's entries are not all known to be committed — a follower may hold
/// proposals a new leader truncates — so they are handed to ZAB, which applies
/// them once they are; [`Recovered::replay`] applies them at once, for tools
/// that look at a stopped server's data.
#[derive(Debug)]
pub struct Recovered {
    pub tree: Tree,
    /// Sessions live at the snapshot.
    pub sessions: BTreeMap<i64, SessionRecord>,
    /// The snapshot recovery started from; `None` for a new data directory.
    pub snapshot_zxid: Option<i64>,
    /// Every logged transaction after the snapshot, in zxid order.
    pub log: Vec<Arc<Txn>>,
    pub epochs: Epochs,
}

impl Recovered {
    pub fn is_new(&self) -> bool {
        self.snapshot_zxid.is_none()
    }

    /// Applies the log to the tree and the sessions.
    pub fn replay(mut self) -> Recovered {
        let mut changes = Vec::new();
        for txn in std::mem::take(&mut self.log) {
            match txn.op.session_effect() {
                Some(SessionEffect::Opened {
                    session_id,
                    timeout_ms,
                    password,
                }) => {
                    self.sessions.insert(
                        session_id,
                        SessionRecord {
                            id: session_id,
                            timeout_ms,
                            password,
                        },
                    );
                }
                Some(SessionEffect::Closed(id)) => {
                    self.sessions.remove(&id);
                }
                None => {}
            }
            changes.clear();
            self.tree.apply(&txn, &mut changes);
        }
        self
    }
}

/// Reads the data directory (see the module doc and [`Recovered`]).
pub fn recover(storage: &dyn Storage) -> StorageResult<Recovered> {
    let range = storage.log_range()?;
    let snapshots = storage.snapshots()?;
    let epochs = storage.epochs()?;
    if snapshots.is_empty() {
        return match range {
            None => Ok(Recovered {
                tree: Tree::new(),
                sessions: BTreeMap::new(),
                snapshot_zxid: None,
                log: Vec::new(),
                epochs,
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
    let Some((snapshot_zxid, (tree, sessions))) = base else {
        return Err(StorageError::Corrupt(format!(
            "no usable snapshot: {}",
            problems.join("; ")
        )));
    };
    let sessions: BTreeMap<i64, SessionRecord> = sessions.into_iter().map(|s| (s.id, s)).collect();
    info!(
        zxid = format!("{snapshot_zxid:#x}"),
        nodes = tree.node_count(),
        sessions = sessions.len(),
        "snapshot loaded"
    );
    let mut log = Vec::new();
    let mut last = snapshot_zxid;
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
            last = txn.zxid;
            log.push(Arc::new(txn));
        }
    }
    if epoch_of(last) > epochs.accepted {
        return Err(StorageError::Corrupt(format!(
            "the log reaches {last:#x}, beyond acceptedEpoch {}",
            epochs.accepted
        )));
    }
    Ok(Recovered {
        tree,
        sessions,
        snapshot_zxid: Some(snapshot_zxid),
        log,
        epochs,
    })
}
