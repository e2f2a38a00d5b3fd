//! `Txn`: one entry of the replicated log. Prep turns a request into a Txn;
//! every server applies the same Txns in zxid order and so reaches the same
//! tree. A Txn carries everything apply needs (names, versions, times), so
//! applying is deterministic.

use bytes::Bytes;
use zoo_wire::{Acl, ErrorCode};

/// A transaction with its position and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub zxid: i64,
    /// Wall-clock ms at the leader when prepared; becomes ctime/mtime.
    pub time_ms: i64,
    /// The session that asked for it (0 for the server's own).
    pub session_id: i64,
    /// The client's xid.
    pub cxid: i32,
    pub op: TxnOp,
}

/// How a transaction changes the session table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEffect {
    Opened {
        session_id: i64,
        timeout_ms: i32,
        password: [u8; 16],
    },
    Closed(i64),
}

impl TxnOp {
    /// The session this transaction opens or closes, if any.
    pub fn session_effect(&self) -> Option<SessionEffect> {
        match *self {
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                password,
            } => Some(SessionEffect::Opened {
                session_id,
                timeout_ms,
                password,
            }),
            TxnOp::CloseSession { session_id } => Some(SessionEffect::Closed(session_id)),
            _ => None,
        }
    }
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    CreateSession {
        session_id: i64,
        timeout_ms: i32,
        password: [u8; 16],
    },
    /// Ends a session and deletes its ephemeral nodes.
    CloseSession {
        session_id: i64,
    },
    Create {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        /// The stored owner: a session id, the container marker or the TTL
        /// marker (protocol section 8.3), or 0.
        ephemeral_owner: i64,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Bytes>,
        /// The version after the change.
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        /// The aversion after the change.
        version: i32,
    },
    /// A version check inside a multi: no effect.
    Check {
        path: String,
    },
    /// All or nothing: applied together, under one zxid.
    Multi(Vec<TxnOp>),
    /// A write that failed in prep; it still takes a zxid, as in ZooKeeper.
    Error(ErrorCode),
    /// A multi that failed in prep: the per-operation results to report.
    MultiError(Vec<ErrorCode>),
}

/// `ephemeralOwner` of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// The top byte of a TTL node's `ephemeralOwner`; the TTL is the low 40 bits.
pub const TTL_OWNER_MARK: i64 = 0xFF << 56;
const TTL_MASK: i64 = (1 << 40) - 1;

/// What kind of node a stored owner denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

impl OwnerKind {
    pub fn of(owner: i64) -> OwnerKind {
        if owner == 0 {
            OwnerKind::Persistent
        } else if owner == CONTAINER_OWNER {
            OwnerKind::Container
        } else if owner & TTL_OWNER_MARK == TTL_OWNER_MARK {
            OwnerKind::Ttl(owner & TTL_MASK)
        } else {
            OwnerKind::Ephemeral(owner)
        }
    }

    /// The stored value for a TTL node.
    pub fn ttl_owner(ttl_ms: i64) -> i64 {
        TTL_OWNER_MARK | (ttl_ms & TTL_MASK)
    }
}
