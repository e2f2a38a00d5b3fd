//! Error codes (`KeeperException.Code`), protocol section 9.

use std::fmt;

/// The `err` field of a ReplyHeader or a multi result.
///
/// Codes this crate does not know are kept as `Unknown`, so that a newer
/// server's reply still decodes and re-encodes unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
#[non_exhaustive]
pub enum ErrorCode {
    #[default]
    Ok,
    SystemError,
    RuntimeInconsistency,
    DataInconsistency,
    ConnectionLoss,
    MarshallingError,
    Unimplemented,
    OperationTimeout,
    BadArguments,
    UnknownSession,
    NewConfigNoQuorum,
    ReconfigInProgress,
    ApiError,
    NoNode,
    NoAuth,
    BadVersion,
    NoChildrenForEphemerals,
    NodeExists,
    NotEmpty,
    SessionExpired,
    InvalidCallback,
    InvalidAcl,
    AuthFailed,
    SessionMoved,
    NotReadOnly,
    EphemeralOnLocalSession,
    NoWatcher,
    RequestTimeout,
    ReconfigDisabled,
    SessionClosedRequireSaslAuth,
    QuotaExceeded,
    ThrottledOp,
    /// A value outside the table; never one of the known codes.
    Unknown(#[cfg_attr(feature = "arbitrary", proptest(strategy = "unknown_code()"))] i32),
}

#[cfg(feature = "arbitrary")]
fn unknown_code() -> impl proptest::strategy::Strategy<Value = i32> {
    use proptest::strategy::Strategy;
    proptest::num::i32::ANY.prop_filter("a code outside the table", |c| {
        !ErrorCode::KNOWN.iter().any(|(v, _)| v == c)
    })
}

impl ErrorCode {
    /// Every known code with its value.
    pub const KNOWN: &'static [(i32, ErrorCode)] = &[
        (0, ErrorCode::Ok),
        (-1, ErrorCode::SystemError),
        (-2, ErrorCode::RuntimeInconsistency),
        (-3, ErrorCode::DataInconsistency),
        (-4, ErrorCode::ConnectionLoss),
        (-5, ErrorCode::MarshallingError),
        (-6, ErrorCode::Unimplemented),
        (-7, ErrorCode::OperationTimeout),
        (-8, ErrorCode::BadArguments),
        (-12, ErrorCode::UnknownSession),
        (-13, ErrorCode::NewConfigNoQuorum),
        (-14, ErrorCode::ReconfigInProgress),
        (-100, ErrorCode::ApiError),
        (-101, ErrorCode::NoNode),
        (-102, ErrorCode::NoAuth),
        (-103, ErrorCode::BadVersion),
        (-108, ErrorCode::NoChildrenForEphemerals),
        (-110, ErrorCode::NodeExists),
        (-111, ErrorCode::NotEmpty),
        (-112, ErrorCode::SessionExpired),
        (-113, ErrorCode::InvalidCallback),
        (-114, ErrorCode::InvalidAcl),
        (-115, ErrorCode::AuthFailed),
        (-118, ErrorCode::SessionMoved),
        (-119, ErrorCode::NotReadOnly),
        (-120, ErrorCode::EphemeralOnLocalSession),
        (-121, ErrorCode::NoWatcher),
        (-122, ErrorCode::RequestTimeout),
        (-123, ErrorCode::ReconfigDisabled),
        (-124, ErrorCode::SessionClosedRequireSaslAuth),
        (-125, ErrorCode::QuotaExceeded),
        (-127, ErrorCode::ThrottledOp),
    ];

    /// The code for a raw value.
    pub fn from_i32(value: i32) -> ErrorCode {
        Self::KNOWN
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, c)| *c)
            .unwrap_or(ErrorCode::Unknown(value))
    }

    /// The raw value on the wire.
    pub fn as_i32(self) -> i32 {
        if let ErrorCode::Unknown(v) = self {
            return v;
        }
        Self::KNOWN
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(v, _)| *v)
            .expect("every named code is in KNOWN")
    }

    /// ZooKeeper's upper-case name (`NONODE`), as its logs and kazoo print it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::SystemError => "SYSTEMERROR",
            ErrorCode::RuntimeInconsistency => "RUNTIMEINCONSISTENCY",
            ErrorCode::DataInconsistency => "DATAINCONSISTENCY",
            ErrorCode::ConnectionLoss => "CONNECTIONLOSS",
            ErrorCode::MarshallingError => "MARSHALLINGERROR",
            ErrorCode::Unimplemented => "UNIMPLEMENTED",
            ErrorCode::OperationTimeout => "OPERATIONTIMEOUT",
            ErrorCode::BadArguments => "BADARGUMENTS",
            ErrorCode::UnknownSession => "UNKNOWNSESSION",
            ErrorCode::NewConfigNoQuorum => "NEWCONFIGNOQUORUM",
            ErrorCode::ReconfigInProgress => "RECONFIGINPROGRESS",
            ErrorCode::ApiError => "APIERROR",
            ErrorCode::NoNode => "NONODE",
            ErrorCode::NoAuth => "NOAUTH",
            ErrorCode::BadVersion => "BADVERSION",
            ErrorCode::NoChildrenForEphemerals => "NOCHILDRENFOREPHEMERALS",
            ErrorCode::NodeExists => "NODEEXISTS",
            ErrorCode::NotEmpty => "NOTEMPTY",
            ErrorCode::SessionExpired => "SESSIONEXPIRED",
            ErrorCode::InvalidCallback => "INVALIDCALLBACK",
            ErrorCode::InvalidAcl => "INVALIDACL",
            ErrorCode::AuthFailed => "AUTHFAILED",
            ErrorCode::SessionMoved => "SESSIONMOVED",
            ErrorCode::NotReadOnly => "NOTREADONLY",
            ErrorCode::EphemeralOnLocalSession => "EPHEMERALONLOCALSESSION",
            ErrorCode::NoWatcher => "NOWATCHER",
            ErrorCode::RequestTimeout => "REQUESTTIMEOUT",
            ErrorCode::ReconfigDisabled => "RECONFIGDISABLED",
            ErrorCode::SessionClosedRequireSaslAuth => "SESSIONCLOSEDREQUIRESASLAUTH",
            ErrorCode::QuotaExceeded => "QUOTAEXCEEDED",
            ErrorCode::ThrottledOp => "THROTTLEDOP",
            ErrorCode::Unknown(_) => "UNKNOWN",
        }
    }

    /// True for `Ok`.
    pub fn is_ok(self) -> bool {
        self == ErrorCode::Ok
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i32())
    }
}

impl From<ErrorCode> for i32 {
    fn from(c: ErrorCode) -> i32 {
        c.as_i32()
    }
}

impl From<i32> for ErrorCode {
    fn from(v: i32) -> ErrorCode {
        ErrorCode::from_i32(v)
    }
}

impl crate::field::Field for ErrorCode {
    const MIN_LEN: usize = 4;
    fn write_field<B: bytes::BufMut>(&self, out: &mut B) {
        out.put_i32(self.as_i32());
    }
    fn read_field<B: bytes::Buf>(
        input: &mut B,
        what: &'static str,
    ) -> crate::error::DecodeResult<Self> {
        crate::jute::read_i32(input, what).map(ErrorCode::from_i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_are_unique() {
        for (v, c) in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::from_i32(*v), *c);
            assert_eq!(c.as_i32(), *v);
        }
        let mut values: Vec<i32> = ErrorCode::KNOWN.iter().map(|(v, _)| *v).collect();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), ErrorCode::KNOWN.len());
        assert_eq!(ErrorCode::from_i32(-126), ErrorCode::Unknown(-126));
        assert_eq!(ErrorCode::Unknown(-126).as_i32(), -126);
    }
}
