//! Locks: exclusive, and read/write, on ephemeral-sequential nodes.
//!
//! A contender creates `<dir>/<uuid>__lock__<seq>` (`__rlock__` for a
//! reader) holding its identifier, the names kazoo's `Lock`, `ReadLock` and
//! `WriteLock` use, so a Zoo lock and a kazoo lock on the same path exclude
//! each other. It holds the lock when no node that blocks it has a lower
//! sequence number; otherwise it watches only the nearest such node (no herd:
//! a release wakes one waiter, or the readers behind a writer), with
//! `getData`, which leaves no watch behind on a node already gone.
//!
//! Guarantees and limits:
//! - While the session lives and the guard is held, no other contender holds
//!   the lock (for read locks: no writer).
//! - The lock is as good as the session: when the connection is lost the
//!   holder cannot know whether its session, and so its lock, survives.
//!   `LockGuard::lost` resolves at that moment (suspension), before the server
//!   could expire the session and hand the lock on; stop touching the
//!   protected resource then.
//! - A paused process can still act after it lost the lock. Pass
//!   `LockGuard::fencing_token` to the protected resource and have it refuse
//!   tokens lower than one it has seen, or make a ZooKeeper write conditional
//!   on the lock with `LockGuard::check_op`.
//! - Not re-entrant: a second `acquire` on the same `Lock` waits behind the
//!   first.

use std::time::Duration;

use tokio::time::Instant;
use zoo_client::{Client, Op, SessionState};
use zoo_wire::{CreateMode, EventType};

use crate::error::{Error, Result};
use crate::support::{
    create_protected, delete_in_background, delete_owned, ensure_path, read_identifiers, retry,
    sequence_after, unique_prefix,
};

/// kazoo's marker for an exclusive (or write) contender.
const WRITE_MARKER: &str = "__lock__";
/// kazoo's marker for a read contender.
const READ_MARKER: &str = "__rlock__";

/// Which lock a contender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// kazoo's `Lock`: excludes every other exclusive or write contender.
    Exclusive,
    /// kazoo's `ReadLock`: shared with other readers, waits for earlier writers.
    Read,
    /// kazoo's `WriteLock`: waits for every earlier reader and writer.
    Write,
}

impl LockKind {
    fn marker(self) -> &'static str {
        match self {
            LockKind::Exclusive | LockKind::Write => WRITE_MARKER,
            LockKind::Read => READ_MARKER,
        }
    }

    /// The markers of the contenders that, earlier in line, keep this one
    /// waiting.
    fn blocked_by(self) -> &'static [&'static str] {
        match self {
            LockKind::Exclusive | LockKind::Read => &[WRITE_MARKER],
            LockKind::Write => &[WRITE_MARKER, READ_MARKER],
        }
    }
}

/// Why a held lock (or leadership, or lease) can no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The connection dropped: the session may survive, but another client
    /// may hold the lock once it expires. Treat as lost.
    Suspended,
    /// The session expired: the node is gone.
    Expired,
    /// The client was closed (or its credentials refused).
    Closed,
    /// The node was deleted by someone else.
    NodeDeleted,
}

/// A lock on a directory node; `acquire` gives a `LockGuard`.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::Lock;
///
/// let lock = Lock::new(&client, "/locks/orders").identifier("worker-1");
/// let guard = lock.acquire().await?;
/// let token = guard.fencing_token(); // hand to the protected resource
/// # let _ = token;
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    dir: String,
    identifier: Vec<u8>,
    kind: LockKind,
}

impl Lock {
    /// An exclusive lock on `dir` (created when missing).
    pub fn new(client: &Client, dir: &str) -> Lock {
        Lock::with_kind(client, dir, LockKind::Exclusive)
    }

    /// The read side of a read/write lock on `dir`.
    pub fn read(client: &Client, dir: &str) -> Lock {
        Lock::with_kind(client, dir, LockKind::Read)
    }

    /// The write side of a read/write lock on `dir`.
    pub fn write(client: &Client, dir: &str) -> Lock {
        Lock::with_kind(client, dir, LockKind::Write)
    }

    pub fn with_kind(client: &Client, dir: &str, kind: LockKind) -> Lock {
        Lock {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            identifier: Vec::new(),
            kind,
        }
    }

    /// Data stored in this contender's node, shown by `contenders`.
    pub fn identifier(mut self, identifier: &str) -> Lock {
        self.identifier = identifier.as_bytes().to_vec();
        self
    }

    /// Waits until the lock is held. Cancel by dropping the future: the
    /// contender's node is then removed in the background.
    pub async fn acquire(&self) -> Result<LockGuard> {
        self.contend(None).await?.ok_or(Error::Timeout)
    }

    /// Waits at most `timeout`; `Error::Timeout` then.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard> {
        self.contend(Some(Wait::Until(Instant::now() + timeout)))
            .await?
            .ok_or(Error::Timeout)
    }

    /// Takes the lock if it is free now, without waiting.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.contend(Some(Wait::No)).await
    }

    /// The identifiers of the contenders, the holder(s) first.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        let markers = [WRITE_MARKER, READ_MARKER];
        let children = match retry(&self.client, || self.client.get_children(&self.dir)).await {
            Err(Error::Client(zoo_client::Error::NoNode)) => return Ok(Vec::new()),
            other => other?,
        };
        let mut in_line: Vec<(i32, String)> = children
            .into_iter()
            .filter_map(|c| sequence_after(&c, &markers).map(|seq| (seq, c)))
            .collect();
        in_line.sort();
        read_identifiers(
            &self.client,
            &self.dir,
            in_line.into_iter().map(|(_, name)| name),
        )
        .await
    }

    async fn contend(&self, wait: Option<Wait>) -> Result<Option<LockGuard>> {
        ensure_path(&self.client, &self.dir).await?;
        let prefix = unique_prefix();
        let mut contender = Contender {
            client: self.client.clone(),
            dir: self.dir.clone(),
            prefix: prefix.clone(),
            name: None,
            armed: true,
        };
        let name = format!("{prefix}{}", self.kind.marker());
        let (name, stat) = create_protected(
            &self.client,
            &self.dir,
            &prefix,
            &name,
            &self.identifier,
            CreateMode::EphemeralSequential,
        )
        .await?;
        contender.name = Some(name.clone());
        loop {
            let children = retry(&self.client, || self.client.get_children(&self.dir)).await?;
            let Some(blocker) = blocker(&children, &name, self.kind)? else {
                let path = format!("{}/{name}", self.dir);
                return Ok(Some(LockGuard {
                    contender,
                    path,
                    fencing_token: stat.czxid,
                }));
            };
            let blocker = format!("{}/{blocker}", self.dir);
            let deadline = match wait {
                Some(Wait::No) => return Ok(None),
                Some(Wait::Until(deadline)) => Some(deadline),
                None => None,
            };
            let watcher =
                match retry(&self.client, || self.client.get_data_and_watch(&blocker)).await {
                    Ok((_, _, watcher)) => watcher,
                    Err(Error::Client(zoo_client::Error::NoNode)) => continue,
                    Err(e) => return Err(e),
                };
            let changed = watcher.changed();
            match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, changed).await {
                    Ok(event) => event?,
                    Err(_) => return Ok(None),
                },
                None => changed.await?,
            };
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Wait {
    No,
    Until(Instant),
}

/// The nearest contender ahead of `own` that keeps it waiting, if any.
fn blocker<'a>(children: &'a [String], own: &str, kind: LockKind) -> Result<Option<&'a str>> {
    let own_seq = sequence_after(own, &[kind.marker()])
        .ok_or_else(|| Error::bad_data(own, "not a lock contender's name"))?;
    if !children.iter().any(|c| c == own) {
        return Err(Error::NodeGone(own.to_string()));
    }
    let ahead = children
        .iter()
        .filter(|c| c.as_str() != own)
        .filter_map(|c| sequence_after(c, kind.blocked_by()).map(|seq| (seq, c.as_str())))
        .filter(|&(seq, _)| seq < own_seq);
    Ok(ahead.max().map(|(_, name)| name))
}

/// A contender's node while it waits or holds; removes the node in the
/// background when dropped while still armed.
#[derive(Debug)]
struct Contender {
    client: Client,
    dir: String,
    prefix: String,
    name: Option<String>,
    armed: bool,
}

impl Drop for Contender {
    fn drop(&mut self) {
        if self.armed {
            delete_in_background(
                &self.client,
                self.dir.clone(),
                self.prefix.clone(),
                self.name.clone(),
            );
        }
    }
}

/// A held lock. `release` it; dropping it releases it in the background.
#[derive(Debug)]
pub struct LockGuard {
    contender: Contender,
    path: String,
    fencing_token: i64,
}

impl LockGuard {
    /// The lock node's czxid: every later holder of this lock has a larger
    /// one, so a resource that remembers the largest token it has seen can
    /// refuse a stale holder.
    pub fn fencing_token(&self) -> i64 {
        self.fencing_token
    }

    /// The path of this holder's node.
    pub fn node(&self) -> &str {
        &self.path
    }

    /// A multi op that fails unless this guard still holds the lock (its
    /// node still exists): put it first in a `multi` to make ZooKeeper writes
    /// conditional on the lock.
    pub fn check_op(&self) -> Op {
        Op::Check {
            path: self.path.clone(),
            version: 0,
        }
    }

    /// Resolves when the lock can no longer be trusted: connection lost,
    /// session ended, or the node deleted.
    pub async fn lost(&self) -> Loss {
        watch_loss(&self.contender.client, &self.path).await
    }

    /// Releases the lock: deletes the node.
    pub async fn release(mut self) -> Result<()> {
        self.contender.armed = false;
        delete_owned(&self.contender.client, &self.path).await
    }
}

/// Waits until `path`, a node this session owns, can no longer be counted
/// on.
pub(crate) async fn watch_loss(client: &Client, path: &str) -> Loss {
    let mut states = client.state_changes();
    loop {
        let state = *states.borrow_and_update();
        match state {
            SessionState::Connected => {}
            // A read-only server's session is not the one that owns the node.
            SessionState::Connecting
            | SessionState::Disconnected
            | SessionState::ConnectedReadOnly => return Loss::Suspended,
            SessionState::Expired => return Loss::Expired,
            SessionState::Closed | SessionState::AuthFailed => return Loss::Closed,
        }
        let watcher = match client.exists_and_watch(path).await {
            Ok((None, _)) => return Loss::NodeDeleted,
            Ok((Some(_), watcher)) => watcher,
            Err(zoo_client::Error::SessionExpired) => return Loss::Expired,
            Err(zoo_client::Error::Closed) => return Loss::Closed,
            Err(_) => return Loss::Suspended,
        };
        tokio::select! {
            event = watcher.changed() => match event {
                Ok(event) if event.event_type == EventType::NodeDeleted => return Loss::NodeDeleted,
                Ok(_) => {}
                Err(_) => return Loss::Expired,
            },
            changed = states.changed() => if changed.is_err() {
                return Loss::Closed;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exclusive_waits_for_nearest_lock_node_only() {
        let children = names(&[
            "a__lock__0000000001",
            "b__lock__0000000003",
            "c__lock__0000000002",
            "lease_holder",
            "r__rlock__0000000004",
            "d__lock__0000000005",
        ]);
        let b = blocker(&children, "d__lock__0000000005", LockKind::Exclusive).unwrap();
        assert_eq!(b, Some("b__lock__0000000003"));
        let first = blocker(&children, "a__lock__0000000001", LockKind::Exclusive).unwrap();
        assert_eq!(first, None);
    }

    #[test]
    fn readers_wait_only_for_earlier_writers() {
        // kazoo#649: a reader must not wait for a writer behind it.
        let children = names(&[
            "r1__rlock__0000000001",
            "w__lock__0000000002",
            "r2__rlock__0000000003",
            "w2__lock__0000000004",
        ]);
        assert_eq!(
            blocker(&children, "r1__rlock__0000000001", LockKind::Read).unwrap(),
            None
        );
        assert_eq!(
            blocker(&children, "r2__rlock__0000000003", LockKind::Read).unwrap(),
            Some("w__lock__0000000002")
        );
        assert_eq!(
            blocker(&children, "w__lock__0000000002", LockKind::Write).unwrap(),
            Some("r1__rlock__0000000001")
        );
        assert_eq!(
            blocker(&children, "w2__lock__0000000004", LockKind::Write).unwrap(),
            Some("r2__rlock__0000000003")
        );
    }

    #[test]
    fn a_vanished_own_node_is_reported() {
        let children = names(&["a__lock__0000000001"]);
        assert_eq!(
            blocker(&children, "b__lock__0000000002", LockKind::Exclusive),
            Err(Error::NodeGone("b__lock__0000000002".into()))
        );
    }
}
