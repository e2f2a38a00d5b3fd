//! Storage in memory, for tests and simulation. A clone is a handle on the
//! same data, so "reopening" after a simulated crash is taking a clone; values
//! are kept sealed as on disk so that corruption can be injected and seen.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;

use super::codec::{decode_txn, encode_txn, seal, unseal};
use super::{Epochs, SnapshotInfo, Storage, StorageError, StorageResult};
use crate::txn::Txn;

#[derive(Debug, Default)]
struct Inner {
    log: BTreeMap<i64, Vec<u8>>,
    epochs: Epochs,
    snapshots: BTreeMap<i64, (SnapshotInfo, Vec<Vec<u8>>)>,
}

/// In-memory storage; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Flips one bit of the stored log entry at `zxid` (tests).
    pub fn corrupt_log_entry(&self, zxid: i64) -> bool {
        let mut inner = self.inner.lock();
        match inner.log.get_mut(&zxid) {
            Some(value) => {
                let last = value.len() - 1;
                value[last] ^= 1;
                true
            }
            None => false,
        }
    }

    /// Flips one bit of chunk `chunk` of the snapshot at `zxid` (tests).
    pub fn corrupt_snapshot_chunk(&self, zxid: i64, chunk: usize) -> bool {
        let mut inner = self.inner.lock();
        match inner
            .snapshots
            .get_mut(&zxid)
            .and_then(|(_, c)| c.get_mut(chunk))
        {
            Some(value) => {
                let last = value.len() - 1;
                value[last] ^= 1;
                true
            }
            None => false,
        }
    }
}

impl Storage for MemoryStorage {
    fn append(&self, txns: &[Arc<Txn>]) -> StorageResult<()> {
        let mut inner = self.inner.lock();
        let mut last = inner.log.keys().next_back().copied().unwrap_or(i64::MIN);
        let mut sealed = Vec::with_capacity(txns.len());
        let mut buf = BytesMut::new();
        for txn in txns {
            if txn.zxid <= last {
                return Err(StorageError::Io(format!(
                    "append of zxid {:#x} after {last:#x}",
                    txn.zxid
                )));
            }
            last = txn.zxid;
            encode_txn(txn, &mut buf);
            sealed.push((txn.zxid, seal(&buf.split())));
        }
        inner.log.extend(sealed);
        Ok(())
    }

    fn log_range(&self) -> StorageResult<Option<(i64, i64)>> {
        let inner = self.inner.lock();
        Ok(inner
            .log
            .keys()
            .next()
            .copied()
            .zip(inner.log.keys().next_back().copied()))
    }

    fn read_log(&self, after: i64, limit: usize) -> StorageResult<Vec<Txn>> {
        let inner = self.inner.lock();
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        inner
            .log
            .range(start..)
            .take(limit)
            .map(|(zxid, value)| {
                let payload = unseal(value)
                    .map_err(|e| StorageError::Corrupt(format!("log entry {zxid:#x}: {e}")))?;
                let txn = decode_txn(payload)
                    .map_err(|e| StorageError::Corrupt(format!("log entry {zxid:#x}: {e}")))?;
                if txn.zxid != *zxid {
                    return Err(StorageError::Corrupt(format!(
                        "log entry {zxid:#x} holds zxid {:#x}",
                        txn.zxid
                    )));
                }
                Ok(txn)
            })
            .collect()
    }

    fn truncate_after(&self, zxid: i64) -> StorageResult<()> {
        let mut inner = self.inner.lock();
        if let Some(start) = zxid.checked_add(1) {
            inner.log.split_off(&start);
        }
        Ok(())
    }

    fn purge_before(&self, zxid: i64) -> StorageResult<()> {
        let mut inner = self.inner.lock();
        let kept = inner.log.split_off(&zxid);
        inner.log = kept;
        Ok(())
    }

    fn epochs(&self) -> StorageResult<Epochs> {
        Ok(self.inner.lock().epochs)
    }

    fn set_epochs(&self, epochs: Epochs) -> StorageResult<()> {
        self.inner.lock().epochs = epochs;
        Ok(())
    }

    fn put_snapshot(
        &self,
        mut info: SnapshotInfo,
        chunks: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> StorageResult<SnapshotInfo> {
        let mut sealed = Vec::new();
        info.bytes = 0;
        for chunk in chunks {
            info.bytes += chunk.len() as u64;
            sealed.push(seal(&chunk));
        }
        info.chunks = sealed.len() as u32;
        self.inner
            .lock()
            .snapshots
            .insert(info.zxid, (info.clone(), sealed));
        Ok(info)
    }

    fn snapshots(&self) -> StorageResult<Vec<SnapshotInfo>> {
        Ok(self
            .inner
            .lock()
            .snapshots
            .values()
            .map(|(info, _)| info.clone())
            .collect())
    }

    fn snapshot_chunks(
        &self,
        info: &SnapshotInfo,
        visit: &mut dyn FnMut(&[u8]) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let chunks = {
            let inner = self.inner.lock();
            let (_, chunks) = inner.snapshots.get(&info.zxid).ok_or_else(|| {
                StorageError::Corrupt(format!("snapshot {:#x} is missing", info.zxid))
            })?;
            chunks.clone()
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let payload = unseal(chunk).map_err(|e| {
                StorageError::Corrupt(format!("snapshot {:#x} chunk {i}: {e}", info.zxid))
            })?;
            visit(payload)?;
        }
        Ok(())
    }

    fn delete_snapshot(&self, zxid: i64) -> StorageResult<()> {
        self.inner.lock().snapshots.remove(&zxid);
        Ok(())
    }
}
