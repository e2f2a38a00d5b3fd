//! The commit step of the pipeline: a prepared `Txn` is made durable (or, in
//! an ensemble, accepted by a quorum) before it is applied and answered.
//!
//! Contract for every implementation: `commit` returns only once the Txn is
//! as safe as the implementation promises (in memory here; on disk with sync
//! for the storage issue; quorum-acknowledged for the ensemble), and it sees
//! zxids in strictly increasing order.

use std::fmt;

use crate::txn::Txn;

/// Why a transaction could not be committed. The server stops accepting
/// writes rather than answer one it could not make safe.
#[derive(Debug)]
pub struct CommitError(pub String);

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommitError {}

/// Where committed transactions go.
pub trait Commit: Send + fmt::Debug {
    fn commit(&mut self, txn: &Txn) -> Result<(), CommitError>;
}

/// Commit in memory only: it orders transactions and keeps nothing; a
/// restart starts from an empty tree.
#[derive(Debug, Default)]
pub struct MemoryCommit {
    last_zxid: i64,
    committed: u64,
}

impl MemoryCommit {
    pub fn committed(&self) -> u64 {
        self.committed
    }
}

impl Commit for MemoryCommit {
    fn commit(&mut self, txn: &Txn) -> Result<(), CommitError> {
        assert!(txn.zxid > self.last_zxid, "commit out of zxid order");
        self.last_zxid = txn.zxid;
        self.committed += 1;
        Ok(())
    }
}
