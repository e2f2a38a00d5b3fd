//! The recipes' error: the client's, plus what a recipe itself can report.

use thiserror::Error;

/// Why a recipe operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The server or the connection said no; see `zoo_client::Error`.
    #[error(transparent)]
    Client(#[from] zoo_client::Error),
    /// A wait ran out of time (lock, semaphore, barrier, queue).
    #[error("timed out")]
    Timeout,
    /// A node this recipe owned is gone (its session ended, or someone
    /// deleted it), so whatever it stood for (a lock, a lease, a
    /// membership) is gone too.
    #[error("the recipe's node {0} is gone")]
    NodeGone(String),
    /// Another controller was elected since this one: its writes are
    /// refused (Kafka's ControllerMovedException).
    #[error("the controller moved: this one (epoch {epoch}) is deposed")]
    ControllerMoved { epoch: i32 },
    /// A compare-and-set kept losing races.
    #[error("gave up after {0} conflicting updates")]
    TooManyConflicts(u32),
    /// A node holds data the recipe cannot read.
    #[error("bad data in {path}: {reason}")]
    BadData { path: String, reason: String },
}

impl Error {
    pub(crate) fn bad_data(path: &str, reason: impl std::fmt::Display) -> Error {
        Error::BadData {
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;
