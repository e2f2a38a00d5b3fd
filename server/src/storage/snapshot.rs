//! Snapshots: the tree and the live sessions at one zxid, written as
//! checksummed chunks from an O(1) clone of the tree, so that writes go on
//! while it is written, and read back into a tree.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use super::codec::{
    decode_items, encode_node, encode_session, NodeRecord, SessionRecord, SnapshotItem,
};
use super::{SnapshotInfo, Storage, StorageError, StorageResult};
use crate::tree::{Nodes, Tree};

/// Chunks are cut once they pass this many bytes.
const CHUNK_BYTES: usize = 512 * 1024;

/// What a snapshot is taken from.
#[derive(Debug, Clone)]
pub struct SnapshotSource {
    pub zxid: i64,
    pub nodes: Nodes,
    pub sessions: Vec<SessionRecord>,
}

/// Encodes a snapshot chunk by chunk, lazily: memory beyond the shared
/// tree stays at about one chunk while storage writes the previous ones.
struct Chunks<'a, N, S> {
    nodes: N,
    sessions: S,
    buf: BytesMut,
    _source: std::marker::PhantomData<&'a ()>,
}

impl<'a, N, S> Iterator for Chunks<'a, N, S>
where
    N: Iterator<
        Item = (
            &'a std::sync::Arc<str>,
            &'a std::sync::Arc<crate::tree::Node>,
        ),
    >,
    S: Iterator<Item = &'a SessionRecord>,
{
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        while self.buf.len() < CHUNK_BYTES {
            if let Some((path, node)) = self.nodes.next() {
                encode_node(
                    path,
                    node.data.as_deref(),
                    &node.acl,
                    &node.stat,
                    &mut self.buf,
                );
            } else if let Some(session) = self.sessions.next() {
                encode_session(session, &mut self.buf);
            } else {
                break;
            }
        }
        (!self.buf.is_empty()).then(|| self.buf.split().to_vec())
    }
}

/// The chunks a snapshot is stored as, encoded lazily; a leader sends these
/// with a SNAP.
pub fn encode_chunks(source: &SnapshotSource) -> impl Iterator<Item = Vec<u8>> + '_ {
    Chunks {
        nodes: source.nodes.iter(),
        sessions: source.sessions.iter(),
        buf: BytesMut::with_capacity(CHUNK_BYTES + 4096),
        _source: std::marker::PhantomData,
    }
}

/// A snapshot arriving in chunks (from a leader), decoded as they come.
#[derive(Debug)]
pub struct SnapshotAssembly {
    pub zxid: i64,
    next_index: u32,
    complete: bool,
    nodes: Vec<NodeRecord>,
    sessions: Vec<SessionRecord>,
}

impl SnapshotAssembly {
    pub fn new(zxid: i64) -> Self {
        SnapshotAssembly {
            zxid,
            next_index: 0,
            complete: false,
            nodes: Vec::new(),
            sessions: Vec::new(),
        }
    }

    /// Adds chunk `index`; chunks must come in order, none after the last.
    pub fn push(&mut self, index: u32, last: bool, payload: &[u8]) -> StorageResult<()> {
        if self.complete || index != self.next_index {
            return Err(StorageError::Corrupt(format!(
                "snapshot {:#x}: chunk {index} where {} was due",
                self.zxid, self.next_index
            )));
        }
        let mut items = Vec::new();
        decode_items(payload, &mut items).map_err(|e| {
            StorageError::Corrupt(format!("snapshot {:#x} chunk {index}: {e}", self.zxid))
        })?;
        for item in items {
            match item {
                SnapshotItem::Node(node) => self.nodes.push(node),
                SnapshotItem::Session(session) => self.sessions.push(session),
            }
        }
        self.next_index += 1;
        self.complete = last;
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The tree and sessions, once complete.
    pub fn finish(self) -> StorageResult<(Tree, Vec<SessionRecord>)> {
        if !self.complete {
            return Err(StorageError::Corrupt(format!(
                "snapshot {:#x}: incomplete",
                self.zxid
            )));
        }
        let tree = Tree::restore(self.zxid, self.nodes)
            .map_err(|e| StorageError::Corrupt(format!("snapshot {:#x}: {e}", self.zxid)))?;
        Ok((tree, self.sessions))
    }
}

/// Encodes and stores a snapshot; returns its description.
pub fn write_snapshot(
    storage: &dyn Storage,
    source: &SnapshotSource,
) -> StorageResult<SnapshotInfo> {
    let info = SnapshotInfo {
        zxid: source.zxid,
        nodes: source.nodes.len() as u64,
        sessions: source.sessions.len() as u64,
        chunks: 0,
        bytes: 0,
        time_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    storage.put_snapshot(info, &mut encode_chunks(source))
}

/// Reads a snapshot back: the tree at its zxid and its sessions. Any damage
/// (checksum, missing chunk, count mismatch, a node without its parent) is
/// `Corrupt`, naming the snapshot.
pub fn read_snapshot(
    storage: &dyn Storage,
    info: &SnapshotInfo,
) -> StorageResult<(Tree, Vec<SessionRecord>)> {
    let mut nodes = Vec::with_capacity(info.nodes.min(1 << 24) as usize);
    let mut sessions = Vec::new();
    let mut items = Vec::new();
    let name = format!("snapshot {:#x}", info.zxid);
    storage.snapshot_chunks(info, &mut |payload| {
        items.clear();
        decode_items(payload, &mut items)
            .map_err(|e| StorageError::Corrupt(format!("{name}: {e}")))?;
        for item in items.drain(..) {
            match item {
                SnapshotItem::Node(node) => nodes.push(node),
                SnapshotItem::Session(session) => sessions.push(session),
            }
        }
        Ok(())
    })?;
    if nodes.len() as u64 != info.nodes || sessions.len() as u64 != info.sessions {
        return Err(StorageError::Corrupt(format!(
            "{name}: {} nodes and {} sessions, {} and {} recorded",
            nodes.len(),
            sessions.len(),
            info.nodes,
            info.sessions
        )));
    }
    let tree = Tree::restore(info.zxid, nodes)
        .map_err(|e| StorageError::Corrupt(format!("{name}: {e}")))?;
    Ok((tree, sessions))
}
