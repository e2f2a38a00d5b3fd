//! Watches as values: a one-shot watcher resolves once; a persistent
//! watcher is a stream of events until dropped.

use tokio::sync::{mpsc, oneshot};
use zoo_wire::EventType;

use crate::error::{Error, Result};

/// One change to a watched node, with the path as the client sees it
/// (chroot removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    pub path: String,
}

/// The state of the session, as the `state()` stream reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Looking for a server.
    Connecting,
    Connected,
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
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
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
    /// The next event; `None` once the session has ended.
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
