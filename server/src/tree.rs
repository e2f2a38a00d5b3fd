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

/// One znode. Its children are not listed here: they are the range of
/// [`Nodes`] that [`Tree::children`] scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `None` when created with a null buffer; reads then return null.
    pub data: Option<Bytes>,
    pub acl: SharedAcl,
    pub stat: StoredStat,
    /// How many children the node has.
    pub num_children: i32,
}

impl Node {
    fn new(data: Option<Bytes>, acl: SharedAcl, stat: StoredStat) -> Node {
        Node {
            data,
            acl,
            stat,
            num_children: 0,
        }
    }

    pub fn data_len(&self) -> i32 {
        self.data.as_ref().map_or(0, |d| d.len() as i32)
    }

    pub fn kind(&self) -> OwnerKind {
        OwnerKind::of(self.stat.ephemeral_owner)
    }

    /// The Stat clients see (protocol sections 6.2 and 8.3).
    pub fn stat(&self) -> Stat {
        let num_children = self.num_children;
        let ephemeral_owner = match self.kind() {
            OwnerKind::Ephemeral(session) => session,
            OwnerKind::Persistent | OwnerKind::Container | OwnerKind::Ttl(_) => 0,
        };
        Stat {
            czxid: self.stat.czxid,
            mzxid: self.stat.mzxid,
            ctime: self.stat.ctime,
            mtime: self.stat.mtime,
            version: self.stat.version,
            cversion: self
                .stat
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(num_children),
            aversion: self.stat.aversion,
            ephemeral_owner,
            data_length: self.data_len(),
            num_children,
            pzxid: self.stat.pzxid,
        }
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

/// The nodes of a tree by key: a persistent ordered map, so that a snapshot
/// is an O(1) clone that later writes do not disturb, and a node's children
/// are one range of it.
pub type Nodes = imbl::OrdMap<NodeKey, Arc<Node>>;

/// A node's place in [`Nodes`]: its depth (four bytes, big-endian), then its
/// path. Byte order is then depth first and path within a depth, so the
/// children of `/a` are exactly the keys from `{depth 2}/a/` up to
/// `{depth 2}/a0` (`0` follows `/`). Nodes need no set of child names,
/// which would cost about as much memory again as the map, and a snapshot
/// lists parents before their children. A box rather than an `Arc`: keys
/// are copied only when a write copies a map leaf a snapshot still shares,
/// and a reference count would add 16 bytes to every znode.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey(Box<[u8]>);

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

impl NodeKey {
    pub fn new(path: &str) -> NodeKey {
        with_key(path, |key| NodeKey(Box::from(key)))
    }

    pub fn path(&self) -> &str {
        std::str::from_utf8(&self.0[DEPTH_BYTES..]).expect("keys are made from paths")
    }
}

impl Borrow<[u8]> for NodeKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.path(), f)
    }
}

fn get_mut_in<'a>(nodes: &'a mut Nodes, path: &str) -> Option<&'a mut Node> {
    with_key(path, move |key| nodes.get_mut(key)).map(Arc::make_mut)
}

/// The data a node keeps: its own copy, made here on the core's thread.
/// The request's bytes were allocated by a connection task on another
/// thread, among short-lived buffers; nodes that keep those fragment the
/// allocator's arenas (1,000,000 znodes of 100 bytes: 405 MB resident
/// without the copy, 384 MB with it).
fn own(data: &Option<Bytes>) -> Option<Bytes> {
    data.as_deref().map(Bytes::copy_from_slice)
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
            nodes: Nodes::new(),
            ephemerals: HashMap::new(),
            last_zxid: 0,
            approximate_data_size: 0,
            acls: AclCache::default(),
        };
        let empty = || Some(Bytes::new());
        tree.insert_root(empty(), Acl::open_unsafe());
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
            tree.link(path, Node::new(empty(), acl, stat));
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
            self.node_mut(&parent_path)
                .expect("checked when the run began")
                .num_children = count;
        }
    }

    fn insert_root(&mut self, data: Option<Bytes>, acl: Vec<Acl>) {
        self.approximate_data_size += 1;
        let acl = self.acls.intern(&acl);
        self.nodes.insert(
            NodeKey::new("/"),
            Arc::new(Node::new(data, acl, StoredStat::default())),
        );
    }

    /// Adds a node under its (existing) parent without touching the parent's
    /// cversion and pzxid.
    fn link(&mut self, path: &str, node: Node) {
        let parent_path = parent(path).expect("a non-root path has a parent");
        self.approximate_data_size += path.len() as i64 + i64::from(node.data_len());
        self.node_mut(parent_path)
            .expect("parent exists")
            .num_children += 1;
        if let OwnerKind::Ephemeral(session) = node.kind() {
            self.ephemerals
                .entry(session)
                .or_default()
                .insert(path.to_string());
        }
        self.nodes.insert(NodeKey::new(path), Arc::new(node));
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        with_key(path, |key| self.nodes.get(key)).map(|n| &**n)
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
            .range::<_, [u8]>((Bound::Included(&low[..]), Bound::Excluded(&high[..])))
            .map(move |(key, _)| &key.path()[prefix_len..])
    }

    /// A node to change in place; it is copied first only if a snapshot
    /// still shares it.
    fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        get_mut_in(&mut self.nodes, path)
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
        self.paths().map(|(path, node)| NodeRecord {
            path: path.to_string(),
            data: node.data.clone(),
            acl: node.acl.to_vec(),
            stat: node.stat,
        })
    }

    /// Every node path, for the container and TTL reaper.
    pub fn paths(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(key, n)| (key.path(), &**n))
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
                let parent_node = self.node_mut(parent_path).expect("prep checked the parent");
                parent_node.stat.cversion = parent_node.stat.cversion.wrapping_add(1);
                parent_node.stat.pzxid = zxid;
                let acl = self.acls.intern(acl);
                self.link(path, Node::new(own(data), acl, stat));
                changes.push(Change::Created(path.clone()));
                changes.push(Change::ChildrenChanged(parent_path.to_string()));
                Applied::Created {
                    path: path.clone(),
                    stat: self.get(path).expect("just created").stat(),
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
                let node = get_mut_in(&mut self.nodes, path).expect("prep checked the node");
                self.approximate_data_size +=
                    data.as_ref().map_or(0, |d| d.len() as i64) - i64::from(node.data_len());
                node.data = own(data);
                node.stat.version = *version;
                node.stat.mzxid = zxid;
                node.stat.mtime = time;
                changes.push(Change::DataChanged(path.clone()));
                Applied::DataSet { stat: node.stat() }
            }
            TxnOp::SetAcl { path, acl, version } => {
                let acl = self.acls.intern(acl);
                let node = self.node_mut(path).expect("prep checked the node");
                node.acl = acl;
                node.stat.aversion = *version;
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
        let Some(node) = with_key(path, |key| self.nodes.remove(key)) else {
            return;
        };
        assert!(node.num_children == 0, "deleting {path} with children");
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
        if let Some(parent_node) = self.node_mut(parent_path) {
            parent_node.num_children -= 1;
            parent_node.stat.pzxid = zxid;
        }
        changes.push(Change::Deleted(path.to_string(), node.acl.clone()));
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
    /// The key inserted last.
    last: Option<Vec<u8>>,
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
                nodes: Nodes::new(),
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
                Some(last) => with_key(&record.path, |key| &last[..] < key),
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
        let node = Node::new(record.data, acl, record.stat);
        tree.approximate_data_size += record.path.len() as i64 + i64::from(node.data_len());
        if let OwnerKind::Ephemeral(session) = node.kind() {
            tree.ephemerals
                .entry(session)
                .or_default()
                .insert(record.path.clone());
        }
        let key = NodeKey::new(&record.path);
        let last = self.last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(&key.0);
        tree.nodes.insert(key, Arc::new(node));
        Ok(())
    }

    fn set_aside(&mut self, record: NodeRecord) -> Result<(), String> {
        if !self.strict {
            self.aside.push(record);
            return Ok(());
        }
        Err(match &self.last {
            None => "no root node".to_string(),
            Some(last) if last[DEPTH_BYTES..] == *record.path.as_bytes() => {
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
        assert!(Arc::ptr_eq(&a.acl, &b.acl), "one shared ACL");
        assert!(Arc::ptr_eq(&a.acl, &tree.get("/").unwrap().acl));
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
        assert_eq!(tree.get("/a").unwrap().acl[0].id.id(), "u999:x");
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
                    tree.get(path).unwrap().num_children as usize,
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
