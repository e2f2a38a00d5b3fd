//! One flat error type: ZooKeeper's error codes plus what can go wrong on
//! the client side.

use thiserror::Error;
use zoo_wire::{ErrorCode, PathError};

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("node does not exist")]
    NoNode,
    #[error("node already exists")]
    NodeExists,
    #[error("version does not match")]
    BadVersion,
    #[error("node has children")]
    NotEmpty,
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    #[error("not authorized")]
    NoAuth,
    #[error("invalid ACL")]
    InvalidAcl,
    #[error("bad arguments")]
    BadArguments,
    #[error("authentication failed")]
    AuthFailed,
    #[error("no such watch")]
    NoWatcher,
    #[error("reconfiguration is disabled")]
    ReconfigDisabled,
    #[error("operation not implemented by the server")]
    Unimplemented,
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
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("no server answered within the connection timeout")]
    Timeout,
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

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;
