//! The znode tree: nodes with their data, ACLs and Stat bookkeeping, the
//! ephemerals of each session, and `apply`, which changes the tree by one
//! committed `Txn`. Apply is deterministic and never fails: prep already
//! checked everything against the same state.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use triomphe::ThinArc;
use zoo_wire::path::parent;
use zoo_wire::{Acl, ErrorCode, Perms, Stat};

use crate::storage::NodeRecord;
use crate::txn::{OwnerKind, Txn, TxnOp};

/// A node's metadata as stored (ZooKeeper's StatPersisted): `cversion` is
/// the count of child creations, and `ephemeral_owner` carries the
/// container and TTL markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

/// An ACL as nodes hold it: one shared copy per distinct ACL, as
/// ZooKeeper's ACL cache does, since most nodes carry one of a few.
pub type SharedAcl = Arc<[Acl]>;

/// Data up to this size is kept in the node's own allocation. Larger data
/// is kept apart (and shared by the node's copies), so that a change to the
/// node's metadata, which replaces the node by a copy (a child created or
/// deleted, say), copies at most this much data.
const INLINE_DATA_MAX: usize = 1024;

/// Set in [`NodeHeader::key_len`] when the node's data is null.
const NULL_DATA: u32 = 1 << 31;

/// A node's fixed part: 96 bytes on 64-bit targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeHeader {
    stat: StoredStat,
    acl: SharedAcl,
    /// Data longer than [`INLINE_DATA_MAX`]; inline data follows the key.
    large: Option<Box<Bytes>>,
    num_children: i32,
    /// The length of the key at the start of the node's bytes, with
    /// [`NULL_DATA`] set when the data is null.
    key_len: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<NodeHeader>() == 96);

/// One znode, in one allocation: its metadata, then its key (see
/// [`Nodes`]), then its data. A tree of small nodes thus costs one
/// allocation and one pointer in the map per node, instead of separate
/// ones for the node, its key and its data. Nodes are immutable: a change
/// makes a new one. Its children are not listed here: they are the range of
/// [`Nodes`] that [`Tree::children`] scans.
#[derive(Clone, PartialEq, Eq)]
pub struct Node(ThinArc<NodeHeader, u8>);

impl Node {
    /// A node of `header`, `key` and the part of its data kept inline.
    fn build(mut header: NodeHeader, key: &[u8], inline: &[u8]) -> Node {
        let key_len = u32::try_from(key.len()).expect("a path fits in a frame");
        assert!(key_len < NULL_DATA, "path too long");
        header.key_len = (header.key_len & NULL_DATA) | key_len;
        let len = key.len() + inline.len();
        let mut node = ThinArc::from_header_and_iter(header, std::iter::repeat_n(0u8, len));
        node.with_arc_mut(|arc| {
            let bytes = triomphe::Arc::get_mut(arc)
                .expect("a new node is not shared")
                .slice_mut();
            bytes[..key.len()].copy_from_slice(key);
            bytes[key.len()..].copy_from_slice(inline);
        });
        Node(node)
    }

    /// Records where `data` goes in `header`, and returns its inline part.
    fn place<'d>(header: &mut NodeHeader, data: Option<&'d [u8]>) -> &'d [u8] {
        header.key_len &= !NULL_DATA;
        header.large = None;
        match data {
            None => {
                header.key_len |= NULL_DATA;
                &[]
            }
            Some(d) if d.len() > INLINE_DATA_MAX => {
                header.large = Some(Box::new(Bytes::copy_from_slice(d)));
                &[]
            }
            Some(d) => d,
        }
    }

    fn new(path: &str, data: Option<&[u8]>, acl: SharedAcl, stat: StoredStat) -> Node {
        let mut header = NodeHeader {
            stat,
            acl,
            large: None,
            num_children: 0,
            key_len: 0,
        };
        let inline = Node::place(&mut header, data);
        with_key(path, |key| Node::build(header, key, inline))
    }

    /// This node with its metadata changed by `f`; key and data stay.
    fn with(&self, f: impl FnOnce(&mut NodeHeader)) -> Node {
        let mut header = self.header().clone();
        f(&mut header);
        Node::build(header, self.key(), self.inline())
    }

    /// This node with other data, and its metadata changed by `f`.
    fn with_data(&self, data: Option<&[u8]>, f: impl FnOnce(&mut NodeHeader)) -> Node {
        let mut header = self.header().clone();
        f(&mut header);
        let inline = Node::place(&mut header, data);
        Node::build(header, self.key(), inline)
    }

    fn inline(&self) -> &[u8] {
        &self.0.slice[self.key().len()..]
    }

    fn header(&self) -> &NodeHeader {
        &self.0.header.header
    }

    fn key(&self) -> &[u8] {
        &self.0.slice[..(self.header().key_len & !NULL_DATA) as usize]
    }

    pub fn path(&self) -> &str {
        std::str::from_utf8(&self.key()[DEPTH_BYTES..]).expect("keys are made from paths")
    }

    /// `None` when created with a null buffer; reads then return null.
    pub fn data(&self) -> Option<&[u8]> {
        let header = self.header();
        if header.key_len & NULL_DATA != 0 {
            None
        } else if let Some(large) = &header.large {
            Some(large)
        } else {
            Some(self.inline())
        }
    }

    /// The data as a reply carries it.
    pub fn data_bytes(&self) -> Option<Bytes> {
        match &self.header().large {
            Some(large) => Some((**large).clone()),
            None => self.data().map(Bytes::copy_from_slice),
        }
    }

    pub fn acl(&self) -> &SharedAcl {
        &self.header().acl
    }

    /// The metadata as stored (not as clients see it: [`Node::stat`]).
    pub fn stored(&self) -> &StoredStat {
        &self.header().stat
    }

    /// How many children the node has.
    pub fn num_children(&self) -> i32 {
        self.header().num_children
    }

    pub fn data_len(&self) -> i32 {
        self.data().map_or(0, |d| d.len() as i32)
    }

    pub fn kind(&self) -> OwnerKind {
        OwnerKind::of(self.stored().ephemeral_owner)
    }

    /// The Stat clients see (protocol sections 6.2 and 8.3).
    pub fn stat(&self) -> Stat {
        let stat = self.stored();
        let num_children = self.num_children();
        let ephemeral_owner = match self.kind() {
            OwnerKind::Ephemeral(session) => session,
            OwnerKind::Persistent | OwnerKind::Container | OwnerKind::Ttl(_) => 0,
        };
        Stat {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
            ctime: stat.ctime,
            mtime: stat.mtime,
            version: stat.version,
            cversion: stat.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: stat.aversion,
            ephemeral_owner,
            data_length: self.data_len(),
            num_children,
            pzxid: stat.pzxid,
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("path", &self.path())
            .field("data", &self.data())
            .field("acl", self.acl())
            .field("stat", self.stored())
            .field("num_children", &self.num_children())
            .finish()
    }
}

/// A change that fires watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    /// The deleted node's ACL goes with it: delivery checks READ on it.
    Deleted(String, SharedAcl),
    DataChanged(String),
    /// The children of this node changed.
    ChildrenChanged(String),
}

/// What applying one operation produced, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    DataSet {
        stat: Stat,
    },
    AclSet {
        stat: Stat,
    },
    Checked,
    SessionCreated,
    SessionClosed,
    Multi(Vec<Applied>),
    /// An error transaction: the code to answer with.
    Failed(ErrorCode),
    /// A failed multi: the per-operation results to answer with.
    MultiFailed(Vec<ErrorCode>),
}

/// The paths that exist on every server from the start.
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// Nodes clients may not delete.
pub fn is_special(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER | QUOTA | CONFIG)
}

/// The nodes of a tree, ordered by key: a persistent ordered set, so that
/// a snapshot is an O(1) clone that later writes do not disturb, and a
/// node's children are one range of it.
///
/// A node's key is its depth (four bytes, big-endian), then its path. Byte
/// order is then depth first and path within a depth, so the children of
/// `/a` are exactly the keys from `{depth 2}/a/` up to `{depth 2}/a0` (`0`
/// follows `/`). Nodes need no set of child names, which would cost about
/// as much memory again, and a snapshot lists parents before their
/// children.
///
/// The set's branches hold copies of some of its entries as separators, so
/// a node replaced or deleted may live on there until its branch changes:
/// at most one old version per separator, a small share of the nodes.
#[derive(Debug, Clone, Default)]
pub struct Nodes(imbl::OrdSet<Entry>);

/// A node in [`Nodes`], ordered and found by its key.
#[derive(Debug, Clone)]
pub struct Entry(Node);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key().cmp(other.0.key())
    }
}

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.0.key()
    }
}

/// Equal when every node is, in all it holds.
impl PartialEq for Nodes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Nodes {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every node, in key order: parents before their children.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.0.iter().map(|e| &e.0)
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        with_key(path, |key| self.0.get(key)).map(|e| &e.0)
    }

    /// Adds a node, or replaces the one at its path.
    fn put(&mut self, node: Node) {
        self.0.insert(Entry(node));
    }

    pub fn remove(&mut self, path: &str) -> Option<Node> {
        with_key(path, |key| self.0.remove(key)).map(|e| e.0)
    }
}

const DEPTH_BYTES: usize = 4;

/// Keys of paths up to this long are built on the stack for lookups; most
/// paths are far shorter.
const STACK_KEY_BYTES: usize = 256;

/// The number of components: 0 for the root, 1 for `/a`, 2 for `/a/b`.
fn depth_of(path: &str) -> u32 {
    if path == "/" {
        0
    } else {
        path.bytes().filter(|&b| b == b'/').count() as u32
    }
}

/// Runs `f` on the key of `path`, built without allocating unless the
/// path is long.
fn with_key<R>(path: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let depth = depth_of(path).to_be_bytes();
    let len = DEPTH_BYTES + path.len();
    if len <= STACK_KEY_BYTES {
        let mut key = [0u8; STACK_KEY_BYTES];
        key[..DEPTH_BYTES].copy_from_slice(&depth);
        key[DEPTH_BYTES..len].copy_from_slice(path.as_bytes());
        f(&key[..len])
    } else {
        let mut key = Vec::with_capacity(len);
        key.extend_from_slice(&depth);
        key.extend_from_slice(path.as_bytes());
        f(&key)
    }
}

/// Orders paths as their keys are ordered.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    (depth_of(a), a.as_bytes()).cmp(&(depth_of(b), b.as_bytes()))
}

/// The tree of znodes.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Nodes,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    last_zxid: i64,
    /// Sum over nodes of path length plus data length (`mntr`).
    approximate_data_size: i64,
    acls: AclCache,
}

/// The distinct ACLs nodes hold. Entries no node holds any more are
/// dropped whenever the cache has doubled since it was last swept, so it
/// stays within twice the number of ACLs in use.
#[derive(Debug, Clone, Default)]
struct AclCache {
    acls: HashSet<SharedAcl>,
    sweep_at: usize,
    /// The ACL interned last: nodes created together, and a snapshot's
    /// nodes, mostly carry the same one, found without hashing it.
    last: Option<SharedAcl>,
}

impl AclCache {
    fn intern(&mut self, acl: &[Acl]) -> SharedAcl {
        if let Some(last) = self.last.as_ref().filter(|last| ***last == *acl) {
            return Arc::clone(last);
        }
        let shared = self.intern_hashed(acl);
        self.last = Some(Arc::clone(&shared));
        shared
    }

    fn intern_hashed(&mut self, acl: &[Acl]) -> SharedAcl {
        if let Some(shared) = self.acls.get(acl) {
            return Arc::clone(shared);
        }
        if self.acls.len() >= self.sweep_at {
            // Held only here: no node (and no snapshot) uses it.
            self.acls.retain(|a| Arc::strong_count(a) > 1);
            self.sweep_at = (self.acls.len() * 2).max(64);
        }
        let shared: SharedAcl = Arc::from(acl);
        self.acls.insert(Arc::clone(&shared));
        shared
    }
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// The initial tree of protocol section 12.2.
    pub fn new() -> Tree {
        let mut tree = Tree {
            nodes: Nodes::default(),
            ephemerals: HashMap::new(),
            last_zxid: 0,
            approximate_data_size: 0,
            acls: AclCache::default(),
        };
        tree.insert_root(Some(&[]), Acl::open_unsafe());
        for (path, acl, aversion) in [
            (ZOOKEEPER, Acl::open_unsafe(), 0),
            (QUOTA, Acl::open_unsafe(), 0),
            // ZooKeeper sets this ACL with version -1 at startup: aversion -1.
            (
                CONFIG,
                vec![Acl {
                    perms: Perms::READ,
                    id: zoo_wire::Id::anyone(),
                }],
                -1,
            ),
        ] {
            let stat = StoredStat {
                aversion,
                ..StoredStat::default()
            };
            let acl = tree.acls.intern(&acl);
            tree.link(Node::new(path, Some(&[]), acl, stat), |_| ());
        }
        tree
    }

    /// A tree from a snapshot's nodes, in any order. Every node but the
    /// root needs its parent among them; child counts and the ephemerals of
    /// each session are rebuilt from the paths.
    pub fn restore(last_zxid: i64, mut records: Vec<NodeRecord>) -> Result<Tree, String> {
        if !records
            .windows(2)
            .all(|w| key_order(&w[0].path, &w[1].path).is_lt())
        {
            records.sort_by(|a, b| key_order(&a.path, &b.path));
        }
        let mut builder = TreeBuilder::new(last_zxid);
        builder.strict = true;
        for record in records {
            builder.push(record)?;
        }
        builder.finish()
    }

    /// Sets the child count a run of children ended with.
    fn end_run(&mut self, run: Option<(String, i32)>) {
        if let Some((parent_path, count)) = run {
            self.change(&parent_path, |parent| parent.num_children = count)
                .expect("checked when the run began");
        }
    }

    fn insert_root(&mut self, data: Option<&[u8]>, acl: Vec<Acl>) {
        self.approximate_data_size += 1;
        let acl = self.acls.intern(&acl);
        self.nodes
            .put(Node::new("/", data, acl, StoredStat::default()));
    }

    /// Adds a node under its (existing) parent, counting it there, and
    /// changes the parent further by `parent_change`.
    fn link(&mut self, node: Node, parent_change: impl FnOnce(&mut NodeHeader)) {
        let path = node.path();
        let parent_path = parent(path).expect("a non-root path has a parent");
        self.approximate_data_size += path.len() as i64 + i64::from(node.data_len());
        self.change(parent_path, |parent| {
            parent.num_children += 1;
            parent_change(parent);
        })
        .expect("parent exists");
        if let OwnerKind::Ephemeral(session) = node.kind() {
            self.ephemerals
                .entry(session)
                .or_default()
                .insert(path.to_string());
        }
        self.nodes.put(node);
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The names of a node's children, in byte order: one range scan.
    pub fn children<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix_len = if path == "/" { 1 } else { path.len() + 1 };
        let mut low = Vec::with_capacity(DEPTH_BYTES + prefix_len);
        low.extend_from_slice(&(depth_of(path) + 1).to_be_bytes());
        low.extend_from_slice(path.as_bytes());
        if path != "/" {
            low.push(b'/');
        }
        let mut high = low.clone();
        *high.last_mut().expect("a prefix ends in a slash") = b'0';
        self.nodes
            .0
            .range::<_, [u8]>((Bound::Included(&low[..]), Bound::Excluded(&high[..])))
            .map(move |e| &e.0.path()[prefix_len..])
    }

    /// Changes a node's metadata: the node is replaced by a changed copy.
    /// Returns the new node, or `None` if there is no node at `path`.
    fn change(&mut self, path: &str, f: impl FnOnce(&mut NodeHeader)) -> Option<Node> {
        let changed = self.get(path)?.with(f);
        self.nodes.put(changed.clone());
        Some(changed)
    }

    /// The nodes at this moment, for a snapshot: O(1), and unaffected by
    /// later writes.
    pub fn nodes(&self) -> Nodes {
        self.nodes.clone()
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// ZooKeeper's node count, which counts the root twice (protocol 12.2).
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn approximate_data_size(&self) -> i64 {
        self.approximate_data_size
    }

    /// The ephemeral paths of a session, in path order.
    pub fn ephemerals_of(&self, session: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session).into_iter().flatten()
    }

    /// Every session with ephemerals, and how many nodes that is.
    pub fn ephemerals(&self) -> &HashMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Every descendant of `path`, not counting the node itself.
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            for child in self.children(&p) {
                count += 1;
                stack.push(join(&p, child));
            }
        }
        count
    }

    /// Every node as a snapshot records it, in key order.
    pub fn records(&self) -> impl Iterator<Item = NodeRecord> + '_ {
        self.nodes.iter().map(|node| NodeRecord {
            path: node.path().to_string(),
            data: node.data_bytes(),
            acl: node.acl().to_vec(),
            stat: *node.stored(),
        })
    }

    /// Every node path, for the container and TTL reaper.
    pub fn paths(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|node| (node.path(), node))
    }

    /// Applies a committed transaction. Zxids must strictly increase.
    pub fn apply(&mut self, txn: &Txn, changes: &mut Vec<Change>) -> Applied {
        assert!(
            txn.zxid > self.last_zxid,
            "zxid {:#x} applied after {:#x}",
            txn.zxid,
            self.last_zxid
        );
        self.last_zxid = txn.zxid;
        self.apply_op(&txn.op, txn.zxid, txn.time_ms, changes)
    }

    fn apply_op(&mut self, op: &TxnOp, zxid: i64, time: i64, changes: &mut Vec<Change>) -> Applied {
        match op {
            TxnOp::CreateSession { .. } => Applied::SessionCreated,
            TxnOp::CloseSession { session_id } => {
                let paths: Vec<String> = self.ephemerals_of(*session_id).cloned().collect();
                for path in paths {
                    self.delete(&path, zxid, changes);
                }
                self.ephemerals.remove(session_id);
                Applied::SessionClosed
            }
            TxnOp::Create {
                path,
                data,
                acl,
                ephemeral_owner,
            } => {
                let stat = StoredStat {
                    czxid: zxid,
                    mzxid: zxid,
                    ctime: time,
                    mtime: time,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: *ephemeral_owner,
                    pzxid: zxid,
                };
                let parent_path = parent(path).expect("prep checked the parent");
                let acl = self.acls.intern(acl);
                let node = Node::new(path, data.as_deref(), acl, stat);
                let stat = node.stat();
                self.link(node, |parent| {
                    parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
                    parent.stat.pzxid = zxid;
                });
                changes.push(Change::Created(path.clone()));
                changes.push(Change::ChildrenChanged(parent_path.to_string()));
                Applied::Created {
                    path: path.clone(),
                    stat,
                }
            }
            TxnOp::Delete { path } => {
                self.delete(path, zxid, changes);
                Applied::Deleted
            }
            TxnOp::SetData {
                path,
                data,
                version,
            } => {
                let old = self.get(path).expect("prep checked the node");
                let node = old.with_data(data.as_deref(), |header| {
                    header.stat.version = *version;
                    header.stat.mzxid = zxid;
                    header.stat.mtime = time;
                });
                self.approximate_data_size +=
                    i64::from(node.data_len()) - i64::from(old.data_len());
                let stat = node.stat();
                self.nodes.put(node);
                changes.push(Change::DataChanged(path.clone()));
                Applied::DataSet { stat }
            }
            TxnOp::SetAcl { path, acl, version } => {
                let acl = self.acls.intern(acl);
                let node = self
                    .change(path, |header| {
                        header.acl = acl;
                        header.stat.aversion = *version;
                    })
                    .expect("prep checked the node");
                Applied::AclSet { stat: node.stat() }
            }
            TxnOp::Check { .. } => Applied::Checked,
            TxnOp::Multi(ops) => Applied::Multi(
                ops.iter()
                    .map(|op| self.apply_op(op, zxid, time, changes))
                    .collect(),
            ),
            TxnOp::Error(code) => Applied::Failed(*code),
            TxnOp::MultiError(codes) => Applied::MultiFailed(codes.clone()),
        }
    }

    fn delete(&mut self, path: &str, zxid: i64, changes: &mut Vec<Change>) {
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        assert!(node.num_children() == 0, "deleting {path} with children");
        self.approximate_data_size -= path.len() as i64 + i64::from(node.data_len());
        if let OwnerKind::Ephemeral(session) = node.kind() {
            if let Some(set) = self.ephemerals.get_mut(&session) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&session);
                }
            }
        }
        let parent_path = parent(path).expect("a deleted node has a parent");
        self.change(parent_path, |parent| {
            parent.num_children -= 1;
            parent.stat.pzxid = zxid;
        });
        changes.push(Change::Deleted(path.to_string(), node.acl().clone()));
        changes.push(Change::ChildrenChanged(parent_path.to_string()));
    }
}

/// Builds a tree from a snapshot's nodes as they are decoded, so that they
/// are never all held twice. Snapshots list nodes in key order, parents
/// first: each goes straight into the tree, and the children of one parent,
/// which come together, are counted as a run. Nodes out of that order (not
/// from a snapshot Zoo wrote) are kept aside and the whole tree rebuilt by
/// [`Tree::restore`] at the end.
#[derive(Debug)]
pub struct TreeBuilder {
    tree: Tree,
    /// The node inserted last.
    last: Option<Node>,
    /// The parent whose children are being counted, and how many so far.
    run: Option<(String, i32)>,
    /// Nodes that came out of key order, or before their parent.
    aside: Vec<NodeRecord>,
    /// Out-of-order nodes are an error instead (`restore`, which sorts).
    strict: bool,
}

impl TreeBuilder {
    pub fn new(last_zxid: i64) -> TreeBuilder {
        TreeBuilder {
            tree: Tree {
                nodes: Nodes::default(),
                ephemerals: HashMap::new(),
                last_zxid,
                approximate_data_size: 0,
                acls: AclCache::default(),
            },
            last: None,
            run: None,
            aside: Vec::new(),
            strict: false,
        }
    }

    /// Adds one node; errors are a bad path, or, when strict, a node out of
    /// order: twice, or without its parent.
    pub fn push(&mut self, record: NodeRecord) -> Result<(), String> {
        if record.path != "/" {
            zoo_wire::validate_path(&record.path)
                .map_err(|e| format!("bad path {:?}: {e}", record.path))?;
        }
        let in_order = self.aside.is_empty()
            && match &self.last {
                None => record.path == "/",
                Some(last) => with_key(&record.path, |key| last.key() < key),
            };
        if !in_order {
            return self.set_aside(record);
        }
        if let Some(parent_path) = parent(&record.path) {
            match &mut self.run {
                Some((p, count)) if p == parent_path => *count += 1,
                _ => {
                    if self.tree.get(parent_path).is_none() {
                        return self.set_aside(record);
                    }
                    self.tree.end_run(self.run.take());
                    self.run = Some((parent_path.to_string(), 1));
                }
            }
        }
        let tree = &mut self.tree;
        let acl = tree.acls.intern(&record.acl);
        let node = Node::new(&record.path, record.data.as_deref(), acl, record.stat);
        tree.approximate_data_size += record.path.len() as i64 + i64::from(node.data_len());
        if let OwnerKind::Ephemeral(session) = node.kind() {
            tree.ephemerals
                .entry(session)
                .or_default()
                .insert(record.path.clone());
        }
        tree.nodes.put(node.clone());
        self.last = Some(node);
        Ok(())
    }

    fn set_aside(&mut self, record: NodeRecord) -> Result<(), String> {
        if !self.strict {
            self.aside.push(record);
            return Ok(());
        }
        Err(match &self.last {
            None => "no root node".to_string(),
            Some(last) if last.path() == record.path => {
                format!("node {} appears twice", record.path)
            }
            Some(_) => format!("node {} has no parent", record.path),
        })
    }

    pub fn finish(mut self) -> Result<Tree, String> {
        self.tree.end_run(self.run.take());
        if self.aside.is_empty() {
            if self.last.is_none() {
                return Err("no root node".into());
            }
            return Ok(self.tree);
        }
        let mut records: Vec<NodeRecord> = self.tree.records().collect();
        records.append(&mut self.aside);
        Tree::restore(self.tree.last_zxid, records)
    }
}

/// `parent` + `/` + `child`, without doubling the root's slash.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(zxid: i64, op: TxnOp) -> Txn {
        Txn {
            zxid,
            time_ms: 1000 + zxid,
            session_id: 1,
            cxid: 1,
            op,
        }
    }

    fn create(path: &str, owner: i64) -> TxnOp {
        TxnOp::Create {
            path: path.into(),
            data: Some(Bytes::from_static(b"x")),
            acl: Acl::open_unsafe(),
            ephemeral_owner: owner,
        }
    }

    #[test]
    fn nodes_share_one_copy_of_each_acl_and_unused_ones_go() {
        let mut tree = Tree::new();
        let mut changes = Vec::new();
        tree.apply(&txn(1, create("/a", 0)), &mut changes);
        tree.apply(&txn(2, create("/b", 0)), &mut changes);
        let (a, b) = (tree.get("/a").unwrap(), tree.get("/b").unwrap());
        assert!(Arc::ptr_eq(a.acl(), b.acl()), "one shared ACL");
        assert!(Arc::ptr_eq(a.acl(), tree.get("/").unwrap().acl()));
        // Many distinct ACLs, each set and then replaced: the cache keeps
        // only those in use (within twice their number).
        for i in 0..1000 {
            let acl = vec![Acl {
                perms: Perms::ALL,
                id: zoo_wire::Id::new("digest", format!("u{i}:x")),
            }];
            let op = TxnOp::SetAcl {
                path: "/a".into(),
                acl,
                version: i + 1,
            };
            tree.apply(&txn(3 + i64::from(i), op), &mut changes);
            changes.clear();
        }
        assert!(
            tree.acls.acls.len() <= 130,
            "{} cached",
            tree.acls.acls.len()
        );
        assert_eq!(tree.get("/a").unwrap().acl()[0].id.id(), "u999:x");
    }

    #[test]
    fn initial_tree_matches_zookeeper() {
        let tree = Tree::new();
        assert_eq!(tree.node_count(), 5);
        let root = tree.get("/").unwrap().stat();
        assert_eq!((root.num_children, root.cversion), (1, -1));
        let zk = tree.get(ZOOKEEPER).unwrap().stat();
        assert_eq!((zk.num_children, zk.cversion), (2, -2));
        assert_eq!(tree.get(CONFIG).unwrap().stat().aversion, -1);
        assert_eq!(tree.descendant_count("/"), 3);
    }

    #[test]
    fn node_data_kept_inline_or_apart_survives_every_change() {
        let mut tree = Tree::new();
        let mut changes = Vec::new();
        let large = vec![7u8; INLINE_DATA_MAX + 1];
        let cases: [(&str, Option<&[u8]>); 4] = [
            ("/null", None),
            ("/empty", Some(b"")),
            ("/inline", Some(&[1, 2, 3])),
            ("/large", Some(&large)),
        ];
        let mut zxid = 0;
        let mut next = || {
            zxid += 1;
            zxid
        };
        for (path, data) in cases {
            let op = TxnOp::Create {
                path: path.into(),
                data: data.map(Bytes::copy_from_slice),
                acl: Acl::open_unsafe(),
                ephemeral_owner: 0,
            };
            tree.apply(&txn(next(), op), &mut changes);
        }
        let check = |tree: &Tree, expected: &[(&str, Option<&[u8]>)]| {
            for (path, data) in expected {
                let node = tree.get(path).unwrap();
                assert_eq!(node.path(), *path);
                assert_eq!(node.data(), *data, "{path}");
                assert_eq!(node.data_bytes().as_deref(), *data, "{path}");
                assert_eq!(node.stat().data_length, data.map_or(0, |d| d.len() as i32));
            }
        };
        check(&tree, &cases);
        let before = tree.nodes();
        // A child under each: the parent's metadata changes, its data stays.
        for (path, _) in cases {
            let child = format!("{path}/c");
            tree.apply(&txn(next(), create(&child, 0)), &mut changes);
            let parent = tree.get(path).unwrap();
            assert_eq!((parent.num_children(), parent.stored().cversion), (1, 1));
        }
        check(&tree, &cases);
        // Data moves between every kind; the metadata stays.
        let rotated = [cases[1], cases[2], cases[3], cases[0]];
        for ((path, _), (_, data)) in cases.iter().zip(rotated) {
            let op = TxnOp::SetData {
                path: path.to_string(),
                data: data.map(Bytes::copy_from_slice),
                version: 1,
            };
            tree.apply(&txn(next(), op), &mut changes);
            assert_eq!(tree.get(path).unwrap().num_children(), 1);
        }
        let moved: Vec<(&str, Option<&[u8]>)> = cases
            .iter()
            .zip(rotated)
            .map(|((path, _), (_, data))| (*path, data))
            .collect();
        check(&tree, &moved);
        let size: i64 = tree
            .paths()
            .map(|(p, n)| p.len() as i64 + i64::from(n.data_len()))
            .sum();
        assert_eq!(tree.approximate_data_size(), size);
        // The clone taken before holds the nodes as they were.
        assert_eq!(before.len(), 4 + cases.len());
        for (path, data) in cases {
            assert_eq!(before.get(path).unwrap().data(), data);
            assert!(before.get(&format!("{path}/c")).is_none());
        }
    }

    #[test]
    fn stat_bookkeeping() {
        let mut tree = Tree::new();
        let mut changes = Vec::new();
        tree.apply(&txn(1, create("/a", 0)), &mut changes);
        tree.apply(&txn(2, create("/a/b", 0)), &mut changes);
        let a = tree.get("/a").unwrap().stat();
        assert_eq!(
            (a.czxid, a.mzxid, a.pzxid, a.cversion, a.num_children),
            (1, 1, 2, 1, 1)
        );
        tree.apply(
            &txn(
                3,
                TxnOp::Delete {
                    path: "/a/b".into(),
                },
            ),
            &mut changes,
        );
        let a = tree.get("/a").unwrap().stat();
        assert_eq!((a.pzxid, a.cversion, a.num_children), (3, 2, 0));
        tree.apply(
            &txn(
                4,
                TxnOp::SetData {
                    path: "/a".into(),
                    data: None,
                    version: 1,
                },
            ),
            &mut changes,
        );
        let a = tree.get("/a").unwrap().stat();
        assert_eq!(
            (a.mzxid, a.mtime, a.version, a.data_length),
            (4, 1004, 1, 0)
        );
        assert_eq!(
            changes,
            vec![
                Change::Created("/a".into()),
                Change::ChildrenChanged("/".into()),
                Change::Created("/a/b".into()),
                Change::ChildrenChanged("/a".into()),
                Change::Deleted("/a/b".into(), Acl::open_unsafe().into()),
                Change::ChildrenChanged("/a".into()),
                Change::DataChanged("/a".into()),
            ]
        );
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals() {
        let mut tree = Tree::new();
        let mut changes = Vec::new();
        tree.apply(&txn(1, create("/e1", 77)), &mut changes);
        tree.apply(&txn(2, create("/e2", 77)), &mut changes);
        tree.apply(&txn(3, create("/p", 0)), &mut changes);
        assert_eq!(tree.ephemeral_count(), 2);
        tree.apply(
            &txn(4, TxnOp::CloseSession { session_id: 77 }),
            &mut changes,
        );
        assert!(tree.get("/e1").is_none() && tree.get("/e2").is_none());
        assert!(tree.get("/p").is_some());
        assert_eq!(tree.ephemeral_count(), 0);
    }

    /// Children are a range of the key order: names that sort around `/`
    /// (`a-b`, `a.b`, `a0`) must not leak into a sibling's listing.
    /// Random creates and deletes against a model; every node's listing,
    /// count and descendants checked, and a restore from shuffled records
    /// gives the same tree.
    #[test]
    fn children_are_listed_from_key_ranges() {
        use rand::{seq::SliceRandom, Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let names = ["a", "a-b", "a.b", "a0", "b", "ab", "\u{e9}"];
        let mut tree = Tree::new();
        let mut model: BTreeSet<String> = ["/", ZOOKEEPER, QUOTA, CONFIG]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let mut changes = Vec::new();
        for zxid in 1..=600 {
            let paths: Vec<&String> = model.iter().collect();
            let leaves: Vec<&&String> = paths
                .iter()
                .filter(|p| !is_special(p) && !model.iter().any(|q| parent(q) == Some(p.as_str())))
                .collect();
            let op = if rng.gen_bool(0.3) && !leaves.is_empty() {
                let path = leaves.choose(&mut rng).unwrap().to_string();
                model.remove(&path);
                TxnOp::Delete { path }
            } else {
                let under = paths.choose(&mut rng).unwrap();
                let path = join(under, names.choose(&mut rng).unwrap());
                if model.contains(&path) {
                    continue;
                }
                model.insert(path.clone());
                create(&path, 0)
            };
            tree.apply(&txn(zxid, op), &mut changes);
        }
        let check = |tree: &Tree| {
            assert_eq!(tree.node_count(), model.len() + 1);
            for path in &model {
                let mut expected: Vec<&str> = model
                    .iter()
                    .filter(|q| parent(q) == Some(path.as_str()))
                    .map(|q| zoo_wire::path::basename(q))
                    .collect();
                expected.sort_unstable();
                let listed: Vec<&str> = tree.children(path).collect();
                assert_eq!(listed, expected, "children of {path}");
                assert_eq!(
                    tree.get(path).unwrap().num_children() as usize,
                    expected.len()
                );
                let prefix = if path == "/" {
                    "/".to_string()
                } else {
                    format!("{path}/")
                };
                let descendants = model
                    .iter()
                    .filter(|q| q.starts_with(&prefix) && *q != path);
                assert_eq!(tree.descendant_count(path), descendants.count(), "{path}");
            }
        };
        check(&tree);
        let mut records: Vec<NodeRecord> = tree.records().collect();
        // As a snapshot lists them (key order), streamed into a builder.
        let mut builder = TreeBuilder::new(tree.last_zxid());
        for record in records.clone() {
            builder.push(record).unwrap();
        }
        let streamed = builder.finish().unwrap();
        check(&streamed);
        assert_eq!(streamed.nodes(), tree.nodes());
        // In any order: the builder sets nodes aside and rebuilds, restore sorts.
        records.shuffle(&mut rng);
        let mut builder = TreeBuilder::new(tree.last_zxid());
        for record in records.clone() {
            builder.push(record).unwrap();
        }
        let rebuilt = builder.finish().unwrap();
        check(&rebuilt);
        assert_eq!(rebuilt.nodes(), tree.nodes());
        let restored = Tree::restore(tree.last_zxid(), records.clone()).unwrap();
        check(&restored);
        assert_eq!(restored.nodes(), tree.nodes());

        // Damage: a node twice, a node without its parent, no root.
        let mut twice = records.clone();
        twice.push(records.iter().find(|r| r.path != "/").unwrap().clone());
        let e = Tree::restore(1, twice).unwrap_err();
        assert!(e.contains("appears twice"), "{e}");
        let orphan: Vec<NodeRecord> = records
            .iter()
            .filter(|r| r.path != ZOOKEEPER)
            .cloned()
            .collect();
        let e = Tree::restore(1, orphan.clone()).unwrap_err();
        assert!(e.contains("has no parent"), "{e}");
        let mut builder = TreeBuilder::new(1);
        for record in orphan {
            builder.push(record).unwrap();
        }
        assert!(builder.finish().unwrap_err().contains("has no parent"));
        let rootless: Vec<NodeRecord> = records.into_iter().filter(|r| r.path != "/").collect();
        let e = Tree::restore(1, rootless).unwrap_err();
        assert!(e.contains("no root"), "{e}");
    }

    #[test]
    #[should_panic(expected = "applied after")]
    fn zxids_must_increase() {
        let mut tree = Tree::new();
        let mut changes = Vec::new();
        tree.apply(&txn(2, create("/a", 0)), &mut changes);
        tree.apply(&txn(2, create("/b", 0)), &mut changes);
    }
}
