//! Snapshots: the tree and the live sessions at one zxid, written as
//! checksummed chunks from an O(1) clone of the tree, so that writes go on
//! while it is written, and read back into a tree.

use bytes::BytesMut;

use super::codec::{decode_items, encode_node, encode_session, SessionRecord, SnapshotItem};
use super::{SnapshotInfo, Storage, StorageError, StorageResult};
use crate::tree::{Nodes, Tree, TreeBuilder};

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
    N: Iterator<Item = &'a crate::tree::Node>,
    S: Iterator<Item = &'a SessionRecord>,
{
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        while self.buf.len() < CHUNK_BYTES {
            if let Some(node) = self.nodes.next() {
                encode_node(
                    node.path(),
                    node.data(),
                    node.acl(),
                    node.stored(),
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
    nodes: TreeBuilder,
    /// The first node the tree refused; reported when the snapshot is
    /// finished, as a corrupt one is.
    refused: Option<String>,
    sessions: Vec<SessionRecord>,
}

impl SnapshotAssembly {
    pub fn new(zxid: i64) -> Self {
        SnapshotAssembly {
            zxid,
            next_index: 0,
            complete: false,
            nodes: TreeBuilder::new(zxid),
            refused: None,
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
                SnapshotItem::Node(node) => {
                    if let Err(e) = self.nodes.push(node) {
                        self.refused.get_or_insert(e);
                    }
                }
                SnapshotItem::Session(session) => self.sessions.push(session),
            }
        }
        self.next_index += 1;
        self.complete = last;
        Ok(())
    }

    /// The tree and sessions, once complete.
    pub fn finish(self) -> StorageResult<(Tree, Vec<SessionRecord>)> {
        if !self.complete {
            return Err(StorageError::Corrupt(format!(
                "snapshot {:#x}: incomplete",
                self.zxid
            )));
        }
        let tree = match self.refused {
            Some(e) => Err(e),
            None => self.nodes.finish(),
        }
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
        time_ms: crate::wall_clock_ms(),
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
    let mut nodes = TreeBuilder::new(info.zxid);
    let mut node_count = 0u64;
    let mut sessions = Vec::new();
    let mut items = Vec::new();
    let name = format!("snapshot {:#x}", info.zxid);
    let corrupt = |e: &dyn std::fmt::Display| StorageError::Corrupt(format!("{name}: {e}"));
    storage.snapshot_chunks(info, &mut |payload| {
        items.clear();
        decode_items(payload, &mut items).map_err(|e| corrupt(&e))?;
        for item in items.drain(..) {
            match item {
                SnapshotItem::Node(node) => {
                    node_count += 1;
                    nodes.push(node).map_err(|e| corrupt(&e))?;
                }
                SnapshotItem::Session(session) => sessions.push(session),
            }
        }
        Ok(())
    })?;
    if node_count != info.nodes || sessions.len() as u64 != info.sessions {
        return Err(StorageError::Corrupt(format!(
            "{name}: {node_count} nodes and {} sessions, {} and {} recorded",
            sessions.len(),
            info.nodes,
            info.sessions
        )));
    }
    let tree = nodes.finish().map_err(|e| corrupt(&e))?;
    Ok((tree, sessions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnOp};
    use zoo_wire::Acl;

    fn tree_with(paths: &[&str]) -> Tree {
        let mut tree = Tree::new();
        for (i, path) in paths.iter().enumerate() {
            let txn = Txn {
                zxid: i as i64 + 1,
                time_ms: 0,
                session_id: 0,
                cxid: 0,
                op: TxnOp::Create {
                    path: path.to_string(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    ephemeral_owner: 0,
                },
            };
            tree.apply(&txn, &mut Vec::new());
        }
        tree
    }

    fn chunks_of(tree: &Tree) -> Vec<Vec<u8>> {
        let source = SnapshotSource {
            zxid: tree.last_zxid(),
            nodes: tree.nodes(),
            sessions: vec![SessionRecord {
                id: 7,
                timeout_ms: 5000,
                password: [1; 16],
            }],
        };
        encode_chunks(&source).collect()
    }

    #[test]
    fn a_snapshot_sent_in_chunks_is_rebuilt_and_bad_ones_are_refused() {
        let tree = tree_with(&["/a", "/a/b"]);
        let chunks = chunks_of(&tree);
        let last = chunks.len() as u32 - 1;
        let mut good = SnapshotAssembly::new(tree.last_zxid());
        for (i, c) in chunks.iter().enumerate() {
            good.push(i as u32, i as u32 == last, c).unwrap();
        }
        let (rebuilt, sessions) = good.finish().unwrap();
        assert_eq!(rebuilt.node_count(), tree.node_count());
        assert!(rebuilt.get("/a/b").is_some());
        assert_eq!(sessions.len(), 1);

        // Out of order, garbage, incomplete: each refused with its reason.
        let mut skipped = SnapshotAssembly::new(1);
        assert!(skipped.push(1, false, &chunks[0]).is_err());
        let mut garbage = SnapshotAssembly::new(1);
        assert!(garbage.push(0, false, &[0xff, 1, 2]).is_err());
        let mut partial = SnapshotAssembly::new(1);
        partial.push(0, false, &chunks[0]).unwrap();
        assert!(partial
            .finish()
            .unwrap_err()
            .to_string()
            .contains("incomplete"));

        // A node whose parent is missing: the chunk decodes, the tree does not.
        let orphan = tree_with(&["/x", "/x/y"]);
        let mut source = SnapshotSource {
            zxid: 2,
            nodes: orphan.nodes(),
            sessions: Vec::new(),
        };
        source.nodes.remove("/x");
        let bad: Vec<Vec<u8>> = encode_chunks(&source).collect();
        let mut assembly = SnapshotAssembly::new(2);
        let n = bad.len();
        for (i, c) in bad.iter().enumerate() {
            assembly.push(i as u32, i + 1 == n, c).unwrap();
        }
        assert!(assembly.finish().is_err(), "an orphan node is refused");
    }
}
