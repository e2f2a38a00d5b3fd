//! Watches as values: a one-shot watcher resolves once; a persistent
//! watcher is a stream of events until dropped. Also the session's state,
//! which `Client::state_changes` follows.

use tokio::sync::{mpsc, oneshot};
use zoo_wire::EventType;

use crate::error::{Error, Result};

/// One change to a watched node, with the path as the client sees it
/// (chroot removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened: `NodeCreated`, `NodeDeleted`, `NodeDataChanged`,
    /// `NodeChildrenChanged`, or a `*WatchRemoved` after `remove_watches`.
    pub event_type: EventType,
    /// The node it happened to.
    pub path: String,
}

/// The state of the session, as `Client::state` and
/// `Client::state_changes` report it (ZooKeeper's `KeeperState`).
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) {
/// use zoo_client::SessionState;
///
/// let mut states = client.state_changes();
/// while states.changed().await.is_ok() {
///     match *states.borrow_and_update() {
///         SessionState::Disconnected => { /* suspend: the session may live on */ }
///         SessionState::Expired => break, // ephemerals and watches are gone
///         _ => {}
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Looking for a server.
    Connecting,
    /// Connected to a server that takes reads and writes.
    Connected,
    /// Connected to a read-only server: one cut off from its quorum, which
    /// takes only clients built with `ClientBuilder::read_only(true)`.
    /// Reads work and may be stale; writes fail with `Error::NotReadOnly`.
    /// The session is that server's own: it holds no ephemerals, and it is
    /// not the one a read-write server gives. Meanwhile the client looks
    /// for a read-write server among the connect string's hosts and moves
    /// there (through `Disconnected`, then `Connected`, with a new session
    /// id). Not safe for anything that owns nodes, such as a lock.
    ConnectedReadOnly,
    /// The connection dropped; the session may still be alive, and the
    /// client is reconnecting ("suspended", in Curator's words).
    Disconnected,
    /// The session is gone, with its ephemerals and watches. Final.
    Expired,
    /// A credential was refused. Final.
    AuthFailed,
    /// `close()` was called. Final.
    Closed,
}

impl SessionState {
    /// The session has ended for good: `Expired`, `AuthFailed` or `Closed`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }

    /// Connected to a server, read-write or read-only (Java's
    /// `States.isConnected`).
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
}

/// Resolves with the one event of a one-shot watch. If the session ends
/// first it resolves with the error (`SessionExpired` or `Closed`).
#[derive(Debug)]
pub struct OneshotWatcher {
    pub(crate) rx: oneshot::Receiver<WatchedEvent>,
}

impl OneshotWatcher {
    /// Waits for the event.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// let (_data, _stat, watcher) = client.get_data_and_watch("/config").await?;
    /// let event = watcher.changed().await?;
    /// println!("{:?} on {}", event.event_type, event.path);
    /// # Ok(()) }
    /// ```
    pub async fn changed(self) -> Result<WatchedEvent> {
        self.rx.await.map_err(|_| Error::SessionExpired)
    }
}

/// The events of a persistent (optionally recursive) watch. Dropping it
/// removes the watch.
#[derive(Debug)]
pub struct PersistentWatcher {
    pub(crate) rx: mpsc::Receiver<WatchedEvent>,
    pub(crate) unwatch: Option<Unwatch>,
}

/// What to do when a persistent watcher is dropped.
pub(crate) struct Unwatch(pub(crate) Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Unwatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unwatch")
    }
}

impl PersistentWatcher {
    /// The next event; `None` once the session has ended (or the watch was
    /// removed with `remove_watches`).
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if let Some(unwatch) = self.unwatch.take() {
            (unwatch.0)();
        }
    }
}
