//! Prep: a write request becomes a `Txn`, checked against the tree plus the
//! changes of earlier operations in the same multi, in the order of checks
//! ZooKeeper uses (protocol section 6.2), so that the first failing check
//! decides the error code.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use zoo_wire::path::{parent, validate_path};
use zoo_wire::{
    Acl, CreateMode, CreateRequest, CreateTtlRequest, ErrorCode, MultiOp, MultiRequest, Perms,
    RequestBody,
};

use crate::acl::Identities;
use crate::tree::{is_special, SharedAcl, StoredStat, Tree};
use crate::txn::{OwnerKind, TxnOp, CONTAINER_OWNER};

/// A node as prep sees it: the tree's state with pending changes on top.
#[derive(Debug, Clone)]
struct NodeView {
    stat: StoredStat,
    num_children: i32,
    acl: SharedAcl,
}

/// The changes of transactions prepared but not yet applied (they are on
/// their way to the log), by path: what prep must see on top of the tree,
/// as ZooKeeper's outstandingChanges.
#[derive(Debug, Default)]
pub struct Outstanding {
    by_path: HashMap<String, (i64, Option<NodeView>)>,
    /// Paths each outstanding zxid changed, in zxid order.
    by_zxid: VecDeque<(i64, Vec<String>)>,
}

impl Outstanding {
    /// Transactions prepared and not yet applied that changed something.
    pub fn len(&self) -> usize {
        self.by_zxid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_zxid.is_empty()
    }

    fn record(&mut self, zxid: i64, changes: HashMap<String, Option<NodeView>>) {
        if changes.is_empty() {
            return;
        }
        let mut paths = Vec::with_capacity(changes.len());
        for (path, node) in changes {
            paths.push(path.clone());
            self.by_path.insert(path, (zxid, node));
        }
        self.by_zxid.push_back((zxid, paths));
    }

    /// Forgets what transactions up to `zxid` changed: the tree has it now.
    pub fn applied(&mut self, zxid: i64) {
        while let Some((z, _)) = self.by_zxid.front() {
            if *z > zxid {
                break;
            }
            let (z, paths) = self.by_zxid.pop_front().expect("front exists");
            for path in paths {
                // A later transaction may have changed the path again.
                if self
                    .by_path
                    .get(&path)
                    .is_some_and(|(owner, _)| *owner == z)
                {
                    self.by_path.remove(&path);
                }
            }
        }
    }
}

/// What prep reads: the tree, overlaid with outstanding transactions, then
/// with the effects of the operations prepared so far in this request.
struct View<'a> {
    tree: &'a Tree,
    outstanding: &'a Outstanding,
    pending: HashMap<String, Option<NodeView>>,
}

impl<'a> View<'a> {
    fn new(tree: &'a Tree, outstanding: &'a Outstanding) -> View<'a> {
        View {
            tree,
            outstanding,
            pending: HashMap::new(),
        }
    }

    fn get(&self, path: &str) -> Option<NodeView> {
        if let Some(pending) = self.pending.get(path) {
            return pending.clone();
        }
        if let Some((_, node)) = self.outstanding.by_path.get(path) {
            return node.clone();
        }
        self.tree.get(path).map(|node| NodeView {
            stat: *node.stored(),
            num_children: node.num_children(),
            acl: node.acl().clone(),
        })
    }

    fn set(&mut self, path: &str, node: Option<NodeView>) {
        self.pending.insert(path.to_string(), node);
    }
}

/// Who is asking, and under which settings.
#[derive(Debug)]
pub struct PrepContext<'a> {
    pub session_id: i64,
    pub identities: &'a Identities,
    pub extended_types_enabled: bool,
}

/// `v + 1`, skipping -1 so that -1 keeps meaning "any version".
fn next_version(v: i32) -> i32 {
    match v.wrapping_add(1) {
        -1 => 0,
        n => n,
    }
}

/// The parent of a path as ZooKeeper takes it: everything before the last
/// `/`, with the root for top-level names (and for `/` itself).
fn parent_of(path: &str) -> &str {
    parent(path).unwrap_or("/")
}

type Prepared = Result<TxnOp, ErrorCode>;

/// Prepares one top-level write that will take `zxid`, against the tree
/// and the outstanding transactions; a successful one is recorded in
/// `outstanding`. Errors become an error transaction, which still takes a
/// zxid.
pub fn prep(
    body: &RequestBody,
    tree: &Tree,
    outstanding: &mut Outstanding,
    zxid: i64,
    ctx: &PrepContext,
) -> TxnOp {
    let mut view = View::new(tree, outstanding);
    let op = match body {
        RequestBody::Multi(multi) => prep_multi(multi, &mut view, ctx),
        other => prep_op(other, &mut view, ctx).unwrap_or_else(TxnOp::Error),
    };
    if !matches!(op, TxnOp::Error(_) | TxnOp::MultiError(_)) {
        let changes = view.pending;
        outstanding.record(zxid, changes);
    }
    op
}

fn prep_multi(multi: &MultiRequest, view: &mut View, ctx: &PrepContext) -> TxnOp {
    // A multi of reads only fails as ZooKeeper's does: MARSHALLINGERROR.
    if multi.is_read_only() {
        return TxnOp::Error(ErrorCode::MarshallingError);
    }
    let mut ops = Vec::with_capacity(multi.ops.len());
    for (i, op) in multi.ops.iter().enumerate() {
        let body = match op {
            MultiOp::Create(r) => RequestBody::Create(r.clone()),
            MultiOp::Create2(r) => RequestBody::Create2(r.clone()),
            MultiOp::CreateContainer(r) => RequestBody::CreateContainer(r.clone()),
            MultiOp::CreateTtl(r) => RequestBody::CreateTtl(r.clone()),
            MultiOp::Delete(r) => RequestBody::Delete(r.clone()),
            MultiOp::SetData(r) => RequestBody::SetData(r.clone()),
            MultiOp::Check(r) => match prep_check(&r.path, r.version, view, ctx) {
                Ok(op) => {
                    ops.push(op);
                    continue;
                }
                Err(code) => return multi_failure(multi.ops.len(), i, code),
            },
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => {
                return TxnOp::Error(ErrorCode::MarshallingError)
            }
        };
        match prep_op(&body, view, ctx) {
            Ok(op) => ops.push(op),
            Err(code) => return multi_failure(multi.ops.len(), i, code),
        }
    }
    TxnOp::Multi(ops)
}

/// Results of a failed multi: OK before the failed op (rolled back), its
/// code, then RUNTIMEINCONSISTENCY for the rest.
fn multi_failure(len: usize, failed: usize, code: ErrorCode) -> TxnOp {
    let results = (0..len)
        .map(|i| match i.cmp(&failed) {
            std::cmp::Ordering::Less => ErrorCode::Ok,
            std::cmp::Ordering::Equal => code,
            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
        })
        .collect();
    TxnOp::MultiError(results)
}

fn prep_op(body: &RequestBody, view: &mut View, ctx: &PrepContext) -> Prepared {
    match body {
        // The mode, not the opcode, decides what is made (as in ZooKeeper).
        RequestBody::Create(r) | RequestBody::Create2(r) | RequestBody::CreateContainer(r) => {
            prep_create(r, None, view, ctx)
        }
        RequestBody::CreateTtl(CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        }) => {
            let r = CreateRequest {
                path: path.clone(),
                data: data.clone(),
                acl: acl.clone(),
                flags: *flags,
            };
            prep_create(&r, Some(*ttl), view, ctx)
        }
        RequestBody::Delete(r) => prep_delete(&r.path, r.version, view, ctx),
        RequestBody::DeleteContainer(r) => prep_delete_container(&r.path, view),
        RequestBody::SetData(r) => prep_set_data(&r.path, &r.data, r.version, view, ctx),
        RequestBody::SetAcl(r) => prep_set_acl(&r.path, r.acl.as_deref(), r.version, view, ctx),
        RequestBody::Reconfig(_) => Err(ErrorCode::ReconfigDisabled),
        _ => Err(ErrorCode::MarshallingError),
    }
}

fn prep_create(
    r: &CreateRequest,
    ttl: Option<i64>,
    view: &mut View,
    ctx: &PrepContext,
) -> Prepared {
    let mode = CreateMode::from_i32(r.flags).ok_or(ErrorCode::BadArguments)?;
    if mode.is_ttl() && !ctx.extended_types_enabled {
        return Err(ErrorCode::Unimplemented);
    }
    let ttl = ttl.unwrap_or(-1);
    if mode.is_ttl() {
        if !(0 < ttl && ttl <= zoo_wire::create_mode::MAX_TTL_MS) {
            return Err(ErrorCode::BadArguments);
        }
    } else if ttl >= 0 {
        return Err(ErrorCode::BadArguments);
    }
    if !r.path.contains('/') || r.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let acl = ctx
        .identities
        .fix_acl(r.acl.as_deref())
        .ok_or(ErrorCode::InvalidAcl)?;
    let parent_path = parent_of(&r.path).to_string();
    let mut parent_node = view.get(&parent_path).ok_or(ErrorCode::NoNode)?;
    if !ctx.identities.allows(&parent_node.acl, Perms::CREATE) {
        return Err(ErrorCode::NoAuth);
    }
    let path = if mode.is_sequential() {
        format!("{}{:010}", r.path, parent_node.stat.cversion)
    } else {
        r.path.clone()
    };
    validate_path(&path).map_err(|_| ErrorCode::BadArguments)?;
    if view.get(&path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if let OwnerKind::Ephemeral(_) = OwnerKind::of(parent_node.stat.ephemeral_owner) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let ephemeral_owner = if mode.is_ephemeral() {
        ctx.session_id
    } else if mode.is_container() {
        CONTAINER_OWNER
    } else if mode.is_ttl() {
        OwnerKind::ttl_owner(ttl)
    } else {
        0
    };
    parent_node.stat.cversion = parent_node.stat.cversion.wrapping_add(1);
    parent_node.num_children += 1;
    view.set(&parent_path, Some(parent_node));
    view.set(
        &path,
        Some(NodeView {
            stat: StoredStat {
                ephemeral_owner,
                ..StoredStat::default()
            },
            num_children: 0,
            acl: acl.clone().into(),
        }),
    );
    Ok(TxnOp::Create {
        path,
        data: r.data.clone(),
        acl,
        ephemeral_owner,
    })
}

fn prep_delete(path: &str, version: i32, view: &mut View, ctx: &PrepContext) -> Prepared {
    if !path.contains('/') || path.contains('\0') || is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = parent_of(path).to_string();
    let mut parent_node = view.get(&parent_path).ok_or(ErrorCode::NoNode)?;
    if !ctx.identities.allows(&parent_node.acl, Perms::DELETE) {
        return Err(ErrorCode::NoAuth);
    }
    let node = view.get(path).ok_or(ErrorCode::NoNode)?;
    if version != -1 && node.stat.version != version {
        return Err(ErrorCode::BadVersion);
    }
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    parent_node.num_children -= 1;
    view.set(&parent_path, Some(parent_node));
    view.set(path, None);
    Ok(TxnOp::Delete {
        path: path.to_string(),
    })
}

/// deleteContainer, as the reaper issues it: no ACL or session check; the
/// node must be empty and not a plain ephemeral.
fn prep_delete_container(path: &str, view: &mut View) -> Prepared {
    if !path.contains('/') || path.contains('\0') || is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    let node = view.get(path).ok_or(ErrorCode::NoNode)?;
    if let OwnerKind::Ephemeral(_) = OwnerKind::of(node.stat.ephemeral_owner) {
        return Err(ErrorCode::BadArguments);
    }
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    let parent_path = parent_of(path).to_string();
    if let Some(mut parent_node) = view.get(&parent_path) {
        parent_node.num_children -= 1;
        view.set(&parent_path, Some(parent_node));
    }
    view.set(path, None);
    Ok(TxnOp::Delete {
        path: path.to_string(),
    })
}

fn prep_set_data(
    path: &str,
    data: &Option<Bytes>,
    version: i32,
    view: &mut View,
    ctx: &PrepContext,
) -> Prepared {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
    let mut node = view.get(path).ok_or(ErrorCode::NoNode)?;
    if !ctx.identities.allows(&node.acl, Perms::WRITE) {
        return Err(ErrorCode::NoAuth);
    }
    if version != -1 && node.stat.version != version {
        return Err(ErrorCode::BadVersion);
    }
    let new_version = next_version(node.stat.version);
    node.stat.version = new_version;
    view.set(path, Some(node));
    Ok(TxnOp::SetData {
        path: path.to_string(),
        data: data.clone(),
        version: new_version,
    })
}

fn prep_set_acl(
    path: &str,
    acl: Option<&[Acl]>,
    version: i32,
    view: &mut View,
    ctx: &PrepContext,
) -> Prepared {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
    let acl = ctx.identities.fix_acl(acl).ok_or(ErrorCode::InvalidAcl)?;
    let mut node = view.get(path).ok_or(ErrorCode::NoNode)?;
    if !ctx.identities.allows(&node.acl, Perms::ADMIN) {
        return Err(ErrorCode::NoAuth);
    }
    if version != -1 && node.stat.aversion != version {
        return Err(ErrorCode::BadVersion);
    }
    let new_version = next_version(node.stat.aversion);
    node.stat.aversion = new_version;
    node.acl = acl.clone().into();
    view.set(path, Some(node));
    Ok(TxnOp::SetAcl {
        path: path.to_string(),
        acl,
        version: new_version,
    })
}

fn prep_check(path: &str, version: i32, view: &mut View, ctx: &PrepContext) -> Prepared {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
    let node = view.get(path).ok_or(ErrorCode::NoNode)?;
    if !ctx.identities.allows(&node.acl, Perms::READ) {
        return Err(ErrorCode::NoAuth);
    }
    if version != -1 && node.stat.version != version {
        return Err(ErrorCode::BadVersion);
    }
    Ok(TxnOp::Check {
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::Txn;
    use zoo_wire::{DeleteRequest, SetDataRequest};

    fn ids() -> Identities {
        Identities::new("127.0.0.1".parse().unwrap())
    }

    fn ctx(identities: &Identities) -> PrepContext<'_> {
        PrepContext {
            session_id: 5,
            identities,
            extended_types_enabled: false,
        }
    }

    fn prep1(body: &RequestBody, tree: &Tree, ctx: &PrepContext) -> TxnOp {
        prep(
            body,
            tree,
            &mut Outstanding::default(),
            tree.last_zxid() + 1,
            ctx,
        )
    }

    #[test]
    fn outstanding_transactions_are_seen_until_applied() {
        let identities = ids();
        let c = ctx(&identities);
        let mut tree = Tree::new();
        let mut outstanding = Outstanding::default();
        let q = create("/q", CreateMode::Persistent);
        let first = prep(&q, &tree, &mut outstanding, 1, &c);
        assert!(matches!(first, TxnOp::Create { .. }));
        // The same create again, before the first is applied: it exists.
        assert_eq!(
            prep(&q, &tree, &mut outstanding, 2, &c),
            TxnOp::Error(ErrorCode::NodeExists)
        );
        let seq = create("/q/n", CreateMode::PersistentSequential);
        let names: Vec<String> = (3..5)
            .map(|z| match prep(&seq, &tree, &mut outstanding, z, &c) {
                TxnOp::Create { path, .. } => path,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["/q/n0000000000", "/q/n0000000001"]);
        assert_eq!(outstanding.len(), 3, "error transactions change nothing");
        apply(&mut tree, first);
        outstanding.applied(1);
        assert_eq!(outstanding.len(), 2);
        // /q is now in the tree, and its later changes are still outstanding.
        let third = prep(&seq, &tree, &mut outstanding, 5, &c);
        assert!(matches!(third, TxnOp::Create { ref path, .. } if path == "/q/n0000000002"));
        outstanding.applied(5);
        assert!(outstanding.is_empty());
    }

    fn create(path: &str, mode: CreateMode) -> RequestBody {
        RequestBody::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: mode.as_i32(),
        })
    }

    fn apply(tree: &mut Tree, op: TxnOp) {
        let zxid = tree.last_zxid() + 1;
        let txn = Txn {
            zxid,
            time_ms: 0,
            session_id: 5,
            cxid: 0,
            op,
        };
        tree.apply(&txn, &mut Vec::new());
    }

    #[test]
    fn sequential_names_use_the_parents_counter() {
        let identities = ids();
        let mut tree = Tree::new();
        for expected in ["/q", "/q/n0000000000", "/q/n0000000001"] {
            let mode = if expected == "/q" {
                CreateMode::Persistent
            } else {
                CreateMode::PersistentSequential
            };
            let body = create(if expected == "/q" { "/q" } else { "/q/n" }, mode);
            let op = prep1(&body, &tree, &ctx(&identities));
            assert!(
                matches!(&op, TxnOp::Create { path, .. } if path == expected),
                "{op:?}"
            );
            apply(&mut tree, op);
        }
    }

    #[test]
    fn check_order() {
        let identities = ids();
        let tree = Tree::new();
        let c = ctx(&identities);
        assert_eq!(
            prep1(&create("/", CreateMode::Persistent), &tree, &c),
            TxnOp::Error(ErrorCode::NodeExists)
        );
        assert_eq!(
            prep1(&create("/a/b", CreateMode::Persistent), &tree, &c),
            TxnOp::Error(ErrorCode::NoNode)
        );
        assert_eq!(
            prep1(&create("a", CreateMode::Persistent), &tree, &c),
            TxnOp::Error(ErrorCode::BadArguments)
        );
        let bad_flags = RequestBody::Create(CreateRequest {
            path: "/x".into(),
            data: None,
            acl: None,
            flags: 9,
        });
        assert_eq!(
            prep1(&bad_flags, &tree, &c),
            TxnOp::Error(ErrorCode::BadArguments)
        );
        let null_acl = RequestBody::Create(CreateRequest {
            path: "/x".into(),
            data: None,
            acl: None,
            flags: 0,
        });
        assert_eq!(
            prep1(&null_acl, &tree, &c),
            TxnOp::Error(ErrorCode::InvalidAcl)
        );
        let ttl = RequestBody::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: CreateMode::PersistentWithTtl.as_i32(),
            ttl: 100,
        });
        assert_eq!(
            prep1(&ttl, &tree, &c),
            TxnOp::Error(ErrorCode::Unimplemented)
        );
        let del = |path: &str| {
            RequestBody::Delete(DeleteRequest {
                path: path.into(),
                version: -1,
            })
        };
        assert_eq!(
            prep1(&del("/zookeeper"), &tree, &c),
            TxnOp::Error(ErrorCode::BadArguments)
        );
        assert_eq!(
            prep1(&del("/nope"), &tree, &c),
            TxnOp::Error(ErrorCode::NoNode)
        );
        let set = RequestBody::SetData(SetDataRequest {
            path: "/zookeeper".into(),
            data: None,
            version: 3,
        });
        assert_eq!(prep1(&set, &tree, &c), TxnOp::Error(ErrorCode::BadVersion));
    }

    #[test]
    fn multi_sees_its_own_earlier_operations() {
        let identities = ids();
        let tree = Tree::new();
        let multi = MultiRequest {
            ops: vec![
                MultiOp::Create(CreateRequest {
                    path: "/m".into(),
                    data: None,
                    acl: Some(Acl::open_unsafe()),
                    flags: 0,
                }),
                MultiOp::Create(CreateRequest {
                    path: "/m/c".into(),
                    data: None,
                    acl: Some(Acl::open_unsafe()),
                    flags: 0,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/m".into(),
                    version: -1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/zz".into(),
                    version: -1,
                }),
            ],
        };
        let op = prep1(&RequestBody::Multi(multi), &tree, &ctx(&identities));
        assert_eq!(
            op,
            TxnOp::MultiError(vec![
                ErrorCode::Ok,
                ErrorCode::Ok,
                ErrorCode::NotEmpty,
                ErrorCode::RuntimeInconsistency
            ])
        );
    }

    #[test]
    fn versions_skip_minus_one() {
        assert_eq!(next_version(i32::MAX), i32::MIN);
        assert_eq!(next_version(-2), 0);
        assert_eq!(next_version(0), 1);
    }
}
