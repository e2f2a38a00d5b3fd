//! Storage in RocksDB: three column families in one database.
//!
//! - `log`: big-endian zxid → sealed `Txn`; every append is one write batch
//!   written with sync on.
//! - `meta`: `acceptedEpoch`, `currentEpoch`, and `snap/<zxid>` → the
//!   snapshot's sealed description, written (synced) only after its chunks
//!   are on disk.
//! - `snapshot`: big-endian zxid ‖ big-endian chunk number → sealed chunk.
//!   Chunks bypass the write-ahead log (so that a large snapshot does not
//!   slow the log's syncs) and are made durable by flushing the column family.
//!
//! The write-ahead log is recovered with "tolerate a corrupted tail": a torn
//! last record (the write in flight at a crash, never acknowledged) is dropped;
//! damage anywhere else stops the open with RocksDB's corruption error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, Direction,
    IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use super::codec::{decode_txn, encode_txn, key_zxid, seal, unseal, zxid_key};
use super::{Epochs, SnapshotInfo, Storage, StorageError, StorageResult};
use crate::txn::Txn;

const LOG: &str = "log";
const META: &str = "meta";
const SNAPSHOT: &str = "snapshot";
const ACCEPTED_EPOCH: &[u8] = b"acceptedEpoch";
const CURRENT_EPOCH: &[u8] = b"currentEpoch";
const SNAP_PREFIX: &[u8] = b"snap/";

/// Storage in a RocksDB database directory.
pub struct RocksStorage {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStorage")
            .field("path", &self.path)
            .finish()
    }
}

fn io(context: &str, e: rocksdb::Error) -> StorageError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => StorageError::Corrupt(format!("{context}: {e}")),
        _ => StorageError::Io(format!("{context}: {e}")),
    }
}

/// Each column family's memtable. RocksDB's default (64 MiB, two of them
/// per family) would hold a log the tree already holds, resident; entries
/// are read back only at recovery and by a follower's sync, so a small
/// memtable costs nothing but more frequent, smaller flushes.
const MEMTABLE_BYTES: usize = 8 << 20;

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl RocksStorage {
    /// Opens (creating if needed) the database in `dir`; the write-ahead log
    /// goes to `wal_dir` when given (ZooKeeper's `dataLogDir`).
    pub fn open(dir: &Path, wal_dir: Option<&Path>) -> StorageResult<Arc<RocksStorage>> {
        let storage = RocksStorage::open_with(dir, wal_dir, false)?;
        storage.drop_orphan_chunks()?;
        Ok(Arc::new(storage))
    }

    /// Opens an existing database for reading only (inspection tools); it
    /// may be in use by a running server.
    pub fn open_read_only(dir: &Path, wal_dir: Option<&Path>) -> StorageResult<Arc<RocksStorage>> {
        if !dir.join("CURRENT").exists() {
            return Err(StorageError::Io(format!(
                "{} holds no Zoo database",
                dir.display()
            )));
        }
        Ok(Arc::new(RocksStorage::open_with(dir, wal_dir, true)?))
    }

    fn open_with(
        dir: &Path,
        wal_dir: Option<&Path>,
        read_only: bool,
    ) -> StorageResult<RocksStorage> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_paranoid_checks(true);
        options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        options.set_compression_type(DBCompressionType::None);
        options.set_keep_log_file_num(4);
        options.set_max_total_wal_size(256 << 20);
        if let Some(wal_dir) = wal_dir {
            options.set_wal_dir(wal_dir);
        }
        let cf = |name: &str| {
            let mut cf_options = Options::default();
            cf_options.set_compression_type(DBCompressionType::None);
            cf_options.set_write_buffer_size(MEMTABLE_BYTES);
            ColumnFamilyDescriptor::new(name, cf_options)
        };
        let families = [cf(LOG), cf(META), cf(SNAPSHOT)];
        let db = if read_only {
            DB::open_cf_descriptors_read_only(&options, dir, families, false)
        } else {
            DB::open_cf_descriptors(&options, dir, families)
        }
        .map_err(|e| io(&format!("opening {}", dir.display()), e))?;
        Ok(RocksStorage {
            db,
            path: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    /// Chunks of a snapshot whose description was never written (a crash
    /// while it was being taken) are removed.
    fn drop_orphan_chunks(&self) -> StorageResult<()> {
        let listed: std::collections::BTreeSet<i64> =
            self.snapshots()?.iter().map(|s| s.zxid).collect();
        let mut orphans = std::collections::BTreeSet::new();
        for item in self.db.iterator_cf(self.cf(SNAPSHOT), IteratorMode::Start) {
            let (key, _) = item.map_err(|e| io("scanning snapshot chunks", e))?;
            if key.len() == 12 {
                let zxid = key_zxid(&key[..8]).map_err(StorageError::Corrupt)?;
                if !listed.contains(&zxid) {
                    orphans.insert(zxid);
                }
            }
        }
        for zxid in orphans {
            tracing::info!(
                zxid = format!("{zxid:#x}"),
                "removing an incomplete snapshot"
            );
            self.delete_chunks(zxid)?;
        }
        Ok(())
    }

    fn delete_chunks(&self, zxid: i64) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(SNAPSHOT),
            chunk_key(zxid, 0),
            chunk_key(zxid, u32::MAX),
        );
        batch.delete_cf(self.cf(SNAPSHOT), chunk_key(zxid, u32::MAX));
        self.db
            .write(batch)
            .map_err(|e| io("deleting snapshot chunks", e))
    }

    fn get_epoch(&self, key: &[u8]) -> StorageResult<i64> {
        match self
            .db
            .get_cf(self.cf(META), key)
            .map_err(|e| io("reading epochs", e))?
        {
            None => Ok(0),
            Some(value) => {
                let name = String::from_utf8_lossy(key);
                let mut payload =
                    unseal(&value).map_err(|e| StorageError::Corrupt(format!("{name}: {e}")))?;
                if payload.len() != 8 {
                    return Err(StorageError::Corrupt(format!(
                        "{name}: {} bytes",
                        payload.len()
                    )));
                }
                Ok(payload.get_i64())
            }
        }
    }
}

fn chunk_key(zxid: i64, chunk: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&zxid_key(zxid));
    key[8..].copy_from_slice(&chunk.to_be_bytes());
    key
}

fn snap_meta_key(zxid: i64) -> Vec<u8> {
    let mut key = SNAP_PREFIX.to_vec();
    key.extend_from_slice(&zxid_key(zxid));
    key
}

fn encode_info(info: &SnapshotInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.put_i64(info.zxid);
    out.put_u64(info.nodes);
    out.put_u64(info.sessions);
    out.put_u32(info.chunks);
    out.put_u64(info.bytes);
    out.put_i64(info.time_ms);
    seal(&out)
}

fn decode_info(key: &[u8], value: &[u8]) -> StorageResult<SnapshotInfo> {
    let name = format!("snapshot description {}", String::from_utf8_lossy(key));
    let mut payload = unseal(value).map_err(|e| StorageError::Corrupt(format!("{name}: {e}")))?;
    if payload.len() != 44 {
        return Err(StorageError::Corrupt(format!(
            "{name}: {} bytes",
            payload.len()
        )));
    }
    Ok(SnapshotInfo {
        zxid: payload.get_i64(),
        nodes: payload.get_u64(),
        sessions: payload.get_u64(),
        chunks: payload.get_u32(),
        bytes: payload.get_u64(),
        time_ms: payload.get_i64(),
    })
}

fn check_log_entry(key: &[u8], value: &[u8]) -> StorageResult<Txn> {
    let zxid = key_zxid(key).map_err(|e| StorageError::Corrupt(format!("log: {e}")))?;
    let payload =
        unseal(value).map_err(|e| StorageError::Corrupt(format!("log entry {zxid:#x}: {e}")))?;
    let txn = decode_txn(payload)
        .map_err(|e| StorageError::Corrupt(format!("log entry {zxid:#x}: {e}")))?;
    if txn.zxid != zxid {
        return Err(StorageError::Corrupt(format!(
            "log entry {zxid:#x} holds zxid {:#x}",
            txn.zxid
        )));
    }
    Ok(txn)
}

impl Storage for RocksStorage {
    fn append(&self, txns: &[Arc<Txn>]) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        let mut buf = BytesMut::with_capacity(256);
        let log = self.cf(LOG);
        for txn in txns {
            encode_txn(txn, &mut buf);
            batch.put_cf(log, zxid_key(txn.zxid), seal(&buf.split()));
        }
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| io("appending to the log", e))
    }

    fn log_range(&self) -> StorageResult<Option<(i64, i64)>> {
        let first = self
            .db
            .iterator_cf(self.cf(LOG), IteratorMode::Start)
            .next();
        let last = self.db.iterator_cf(self.cf(LOG), IteratorMode::End).next();
        match (first, last) {
            (Some(first), Some(last)) => {
                let (first, _) = first.map_err(|e| io("reading the log", e))?;
                let (last, _) = last.map_err(|e| io("reading the log", e))?;
                let first = key_zxid(&first).map_err(StorageError::Corrupt)?;
                let last = key_zxid(&last).map_err(StorageError::Corrupt)?;
                Ok(Some((first, last)))
            }
            _ => Ok(None),
        }
    }

    fn read_log(&self, after: i64, limit: usize) -> StorageResult<Vec<Txn>> {
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let start = zxid_key(start.max(0));
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(LOG), IteratorMode::From(&start, Direction::Forward))
        {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(|e| io("reading the log", e))?;
            out.push(check_log_entry(&key, &value)?);
        }
        Ok(out)
    }

    fn truncate_after(&self, zxid: i64) -> StorageResult<()> {
        let Some(start) = zxid.checked_add(1) else {
            return Ok(());
        };
        let mut batch = WriteBatch::default();
        let log = self.cf(LOG);
        batch.delete_range_cf(log, zxid_key(start.max(0)), zxid_key(i64::MAX));
        batch.delete_cf(log, zxid_key(i64::MAX));
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| io("truncating the log", e))
    }

    fn purge_before(&self, zxid: i64) -> StorageResult<()> {
        if zxid <= 0 {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(LOG), zxid_key(0), zxid_key(zxid));
        self.db.write(batch).map_err(|e| io("purging the log", e))
    }

    fn epochs(&self) -> StorageResult<Epochs> {
        Ok(Epochs {
            accepted: self.get_epoch(ACCEPTED_EPOCH)?,
            current: self.get_epoch(CURRENT_EPOCH)?,
        })
    }

    fn set_epochs(&self, epochs: Epochs) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        let meta = self.cf(META);
        batch.put_cf(meta, ACCEPTED_EPOCH, seal(&epochs.accepted.to_be_bytes()));
        batch.put_cf(meta, CURRENT_EPOCH, seal(&epochs.current.to_be_bytes()));
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| io("writing epochs", e))
    }

    fn put_snapshot(
        &self,
        mut info: SnapshotInfo,
        chunks: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> StorageResult<SnapshotInfo> {
        let mut unlogged = WriteOptions::default();
        unlogged.disable_wal(true);
        let snapshot = self.cf(SNAPSHOT);
        info.chunks = 0;
        info.bytes = 0;
        for chunk in chunks {
            self.db
                .put_cf_opt(
                    snapshot,
                    chunk_key(info.zxid, info.chunks),
                    seal(&chunk),
                    &unlogged,
                )
                .map_err(|e| io("writing a snapshot chunk", e))?;
            info.chunks += 1;
            info.bytes += chunk.len() as u64;
        }
        // The chunks are durable once their memtable is flushed to a synced
        // table file; only then is the snapshot listed.
        self.db
            .flush_cf(snapshot)
            .map_err(|e| io("flushing snapshot chunks", e))?;
        self.db
            .put_cf_opt(
                self.cf(META),
                snap_meta_key(info.zxid),
                encode_info(&info),
                &synced(),
            )
            .map_err(|e| io("recording a snapshot", e))?;
        Ok(info)
    }

    fn snapshots(&self) -> StorageResult<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(META),
            IteratorMode::From(SNAP_PREFIX, Direction::Forward),
        ) {
            let (key, value) = item.map_err(|e| io("listing snapshots", e))?;
            if !key.starts_with(SNAP_PREFIX) {
                break;
            }
            out.push(decode_info(&key, &value)?);
        }
        Ok(out)
    }

    fn snapshot_chunks(
        &self,
        info: &SnapshotInfo,
        visit: &mut dyn FnMut(&[u8]) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let start = chunk_key(info.zxid, 0);
        let mut expected = 0u32;
        for item in self.db.iterator_cf(
            self.cf(SNAPSHOT),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (key, value) = item.map_err(|e| io("reading a snapshot", e))?;
            if key.len() != 12 || key[..8] != start[..8] || expected == info.chunks {
                break;
            }
            let chunk = u32::from_be_bytes(key[8..].try_into().expect("four bytes"));
            if chunk != expected {
                return Err(StorageError::Corrupt(format!(
                    "snapshot {:#x}: chunk {expected} is missing",
                    info.zxid
                )));
            }
            let payload = unseal(&value).map_err(|e| {
                StorageError::Corrupt(format!("snapshot {:#x} chunk {chunk}: {e}", info.zxid))
            })?;
            visit(payload)?;
            expected += 1;
        }
        if expected != info.chunks {
            return Err(StorageError::Corrupt(format!(
                "snapshot {:#x}: {expected} of {} chunks present",
                info.zxid, info.chunks
            )));
        }
        Ok(())
    }

    fn delete_snapshot(&self, zxid: i64) -> StorageResult<()> {
        // Unlisted first: a crash in between leaves orphan chunks, which the
        // next open removes.
        self.db
            .delete_cf_opt(self.cf(META), snap_meta_key(zxid), &synced())
            .map_err(|e| io("removing a snapshot", e))?;
        self.delete_chunks(zxid)
    }
}
