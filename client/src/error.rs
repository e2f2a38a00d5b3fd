//! One flat error type: ZooKeeper's error codes plus what can go wrong on
//! the client side.

use thiserror::Error;
use zoo_wire::{ErrorCode, PathError};

/// Why an operation failed.
///
/// The first variants mirror the server's error codes
/// (`KeeperException.Code`); the rest arise in the client. Errors are
/// `Clone + Eq`, so tests can `assert_eq!` them:
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) {
/// use zoo_client::Error;
///
/// match client.delete("/app/node", Some(3)).await {
///     Ok(()) | Err(Error::NoNode) => {} // gone either way
///     Err(Error::BadVersion) => { /* someone changed it: re-read */ }
///     Err(e) if e.is_retryable() => { /* may have happened: check */ }
///     Err(e) => panic!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The node does not exist (or, for `create`, its parent does not).
    #[error("node does not exist")]
    NoNode,
    /// `create` found a node already at that path.
    #[error("node already exists")]
    NodeExists,
    /// The node's version is not the one the operation expected.
    #[error("version does not match")]
    BadVersion,
    /// `delete` of a node that still has children.
    #[error("node has children")]
    NotEmpty,
    /// `create` under an ephemeral node.
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    /// The node's ACL does not grant this session's identities the
    /// permission the operation needs.
    #[error("not authorized")]
    NoAuth,
    /// An empty or malformed ACL.
    #[error("invalid ACL")]
    InvalidAcl,
    /// Arguments the server (or the client, before sending) refused, e.g. a
    /// TTL mode without a TTL, or an empty connect string.
    #[error("bad arguments")]
    BadArguments,
    /// A credential was refused; the session is unusable. Final.
    #[error("authentication failed")]
    AuthFailed,
    /// `remove_watches` found no such watch on the server.
    #[error("no such watch")]
    NoWatcher,
    /// A write sent to a read-only server (one cut off from its quorum,
    /// see `ClientBuilder::read_only`). It did not happen; it can succeed
    /// once the client has moved to a read-write server (state
    /// `SessionState::Connected`).
    #[error("the server is read-only; writes are refused")]
    NotReadOnly,
    /// `reconfig` while the ensemble does not allow it.
    #[error("reconfiguration is disabled")]
    ReconfigDisabled,
    /// The server does not implement the operation.
    #[error("operation not implemented by the server")]
    Unimplemented,
    /// The server could not decode the request.
    #[error("the server could not decode the request")]
    MarshallingError,
    /// The session expired: its ephemerals are gone; make a new client.
    #[error("session expired")]
    SessionExpired,
    /// The connection dropped before the reply came: the operation may or
    /// may not have happened.
    #[error("connection lost; the operation may have happened")]
    ConnectionLoss,
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// A path that breaks ZooKeeper's rules (the message says which).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// No server gave a session within the connection timeout.
    #[error("no server answered within the connection timeout")]
    Timeout,
    /// The server sent something this client cannot make sense of.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Any other server error code.
    #[error("server error {0}")]
    Server(ErrorCode),
}

impl Error {
    /// The error for a reply's code (`None` for OK).
    pub fn from_code(code: ErrorCode) -> Option<Error> {
        Some(match code {
            ErrorCode::Ok => return None,
            ErrorCode::NoNode => Error::NoNode,
            ErrorCode::NodeExists => Error::NodeExists,
            ErrorCode::BadVersion => Error::BadVersion,
            ErrorCode::NotEmpty => Error::NotEmpty,
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals,
            ErrorCode::NoAuth => Error::NoAuth,
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::BadArguments => Error::BadArguments,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::MarshallingError => Error::MarshallingError,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            other => Error::Server(other),
        })
    }

    /// Worth retrying on the same client (after the connection returns).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::Timeout)
    }

    /// The operation certainly did not happen. `ConnectionLoss` and
    /// `Timeout` are ambiguous: it may have.
    pub fn is_definite(&self) -> bool {
        !matches!(self, Error::ConnectionLoss | Error::Timeout)
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Error {
        Error::InvalidPath(e.message().to_string())
    }
}

/// The result of every client operation.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_read_only_is_a_definite_failure_of_its_own() {
        let error = Error::from_code(ErrorCode::NotReadOnly);
        assert_eq!(error, Some(Error::NotReadOnly));
        assert!(Error::NotReadOnly.is_definite());
        assert!(!Error::NotReadOnly.is_retryable());
    }
}
