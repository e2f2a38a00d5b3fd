//! Durable state: the transaction log, the epoch metadata and snapshots.
//!
//! # The contract every `Storage` keeps
//!
//! - `append` writes a batch of transactions atomically and returns only once
//!   the whole batch is durable (synced to disk for RocksDB). Zxids in and
//!   across batches strictly increase. A crash leaves either the whole batch
//!   or none of it.
//! - `read_log(after, limit)` returns logged transactions with zxid > `after`
//!   in zxid order, each checked against its checksum; a damaged entry is a
//!   [`StorageError::Corrupt`] naming its zxid, never silently skipped.
//! - `truncate_after(z)` durably removes every entry above `z` (ZAB's TRUNC);
//!   `purge_before(z)` removes entries below `z` (after a snapshot covers them).
//! - `epochs`/`set_epochs` keep ZAB's acceptedEpoch and currentEpoch; a set is
//!   durable when it returns.
//! - Snapshots are stored as numbered chunks and become visible in
//!   `snapshots()` only once every chunk is durable; a snapshot whose chunks do
//!   not all verify is reported corrupt when read.
//! - Reopening after a crash (kill -9 or power loss) yields exactly the
//!   appended batches that returned, plus possibly the one in flight.

mod codec;
mod memory;
mod recover;
mod rocks;
mod snapshot;
mod writer;

pub mod conformance;

use std::fmt;
use std::sync::Arc;

pub use codec::{decode_txn, encode_txn, NodeRecord, SessionRecord, SnapshotItem};
pub use memory::MemoryStorage;
pub use recover::{recover, Recovered};
pub use rocks::RocksStorage;
pub use snapshot::{
    encode_chunks, read_snapshot, write_snapshot, SnapshotAssembly, SnapshotSource,
};
pub use writer::{LogEvent, LogOp, LogWriter, Snapshotter};

use crate::txn::Txn;

/// Why storage failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The disk or the database refused an operation.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Stored bytes do not verify; `what` names the entry (zxid, snapshot,
    /// chunk) and says what is wrong.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// ZAB's epochs: the last epoch this server accepted a NEWEPOCH for, and the
/// epoch of the leader it last acknowledged NEWLEADER of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epochs {
    pub accepted: i64,
    pub current: i64,
}

/// A complete snapshot, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The zxid of the last transaction the snapshot contains.
    pub zxid: i64,
    pub nodes: u64,
    pub sessions: u64,
    pub chunks: u32,
    /// Bytes of chunk payload.
    pub bytes: u64,
    /// Wall-clock ms when it was written.
    pub time_ms: i64,
}

/// Where the log, epochs and snapshots live.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Appends transactions atomically and durably (see the module contract).
    fn append(&self, txns: &[Arc<Txn>]) -> StorageResult<()>;
    /// The first and last logged zxid, or `None` when the log is empty.
    fn log_range(&self) -> StorageResult<Option<(i64, i64)>>;
    /// Up to `limit` transactions with zxid > `after`, in order.
    fn read_log(&self, after: i64, limit: usize) -> StorageResult<Vec<Txn>>;
    /// Removes every entry with zxid > `zxid`, durably.
    fn truncate_after(&self, zxid: i64) -> StorageResult<()>;
    /// Removes every entry with zxid < `zxid`.
    fn purge_before(&self, zxid: i64) -> StorageResult<()>;
    fn epochs(&self) -> StorageResult<Epochs>;
    /// Records both epochs, durably.
    fn set_epochs(&self, epochs: Epochs) -> StorageResult<()>;
    /// Stores a snapshot's chunks; it becomes listed once all are durable.
    /// `chunks` and `bytes` of `info` are filled in from what was stored.
    fn put_snapshot(
        &self,
        info: SnapshotInfo,
        chunks: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> StorageResult<SnapshotInfo>;
    /// Complete snapshots, oldest first.
    fn snapshots(&self) -> StorageResult<Vec<SnapshotInfo>>;
    /// Calls `visit` with each chunk's payload, in order, after checking it.
    fn snapshot_chunks(
        &self,
        info: &SnapshotInfo,
        visit: &mut dyn FnMut(&[u8]) -> StorageResult<()>,
    ) -> StorageResult<()>;
    fn delete_snapshot(&self, zxid: i64) -> StorageResult<()>;
}

/// ZooKeeper's `epoch << 32 | counter`.
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// Checks that `next` may follow `prev` in the log: the next counter of the
/// same epoch, or any zxid of a later epoch.
pub fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || (epoch_of(next) > epoch_of(prev) && next > prev)
}

/// Keeps `retain` snapshots and the log they need; returns how many
/// snapshots were removed. The log below the oldest kept snapshot goes.
pub fn purge(storage: &dyn Storage, retain: usize) -> StorageResult<usize> {
    let snapshots = storage.snapshots()?;
    let retain = retain.max(1);
    if snapshots.len() <= retain {
        return Ok(0);
    }
    let doomed = snapshots.len() - retain;
    for info in &snapshots[..doomed] {
        storage.delete_snapshot(info.zxid)?;
    }
    // Entries up to the oldest kept snapshot's zxid are covered by it.
    let oldest_kept = snapshots[doomed].zxid;
    storage.purge_before(oldest_kept + 1)?;
    Ok(doomed)
}
