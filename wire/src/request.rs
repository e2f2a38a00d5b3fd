//! A client request after the handshake: RequestHeader, then the record its
//! opcode calls for.

use bytes::{Buf, BufMut};
use thiserror::Error;

use crate::error::DecodeError;
use crate::jute::Record;
use crate::multi::MultiRequest;
use crate::opcode::{xid, OpCode};
use crate::proto::{
    AddWatchRequest, AuthPacket, CreateRequest, CreateTtlRequest, DeleteContainerRequest,
    DeleteRequest, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest, GetChildrenRequest,
    GetDataRequest, GetEphemeralsRequest, ReconfigRequest, RequestHeader, SaslToken, SetAclRequest,
    SetDataRequest, SetWatches, SetWatches2, SyncRequest, WatchesRequest,
};

/// The body of a request; the variant fixes the opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub enum RequestBody {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    DeleteContainer(DeleteContainerRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildrenRequest),
    Sync(SyncRequest),
    Ping,
    Multi(MultiRequest),
    MultiRead(MultiRequest),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(SaslToken),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl RequestBody {
    /// The opcode written in the header.
    pub fn opcode(&self) -> OpCode {
        match self {
            RequestBody::Create(_) => OpCode::Create,
            RequestBody::Create2(_) => OpCode::Create2,
            RequestBody::CreateContainer(_) => OpCode::CreateContainer,
            RequestBody::CreateTtl(_) => OpCode::CreateTtl,
            RequestBody::Delete(_) => OpCode::Delete,
            RequestBody::DeleteContainer(_) => OpCode::DeleteContainer,
            RequestBody::Exists(_) => OpCode::Exists,
            RequestBody::GetData(_) => OpCode::GetData,
            RequestBody::SetData(_) => OpCode::SetData,
            RequestBody::GetAcl(_) => OpCode::GetAcl,
            RequestBody::SetAcl(_) => OpCode::SetAcl,
            RequestBody::GetChildren(_) => OpCode::GetChildren,
            RequestBody::GetChildren2(_) => OpCode::GetChildren2,
            RequestBody::Sync(_) => OpCode::Sync,
            RequestBody::Ping => OpCode::Ping,
            RequestBody::Multi(_) => OpCode::Multi,
            RequestBody::MultiRead(_) => OpCode::MultiRead,
            RequestBody::Reconfig(_) => OpCode::Reconfig,
            RequestBody::CheckWatches(_) => OpCode::CheckWatches,
            RequestBody::RemoveWatches(_) => OpCode::RemoveWatches,
            RequestBody::Auth(_) => OpCode::Auth,
            RequestBody::SetWatches(_) => OpCode::SetWatches,
            RequestBody::SetWatches2(_) => OpCode::SetWatches2,
            RequestBody::Sasl(_) => OpCode::Sasl,
            RequestBody::GetEphemerals(_) => OpCode::GetEphemerals,
            RequestBody::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            RequestBody::AddWatch(_) => OpCode::AddWatch,
            RequestBody::WhoAmI => OpCode::WhoAmI,
            RequestBody::CloseSession => OpCode::CloseSession,
        }
    }

    /// Appends the body (without header).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            RequestBody::Create(r) | RequestBody::Create2(r) | RequestBody::CreateContainer(r) => {
                r.encode(out)
            }
            RequestBody::CreateTtl(r) => r.encode(out),
            RequestBody::Delete(r) => r.encode(out),
            RequestBody::DeleteContainer(r) => r.encode(out),
            RequestBody::Exists(r) => r.encode(out),
            RequestBody::GetData(r) => r.encode(out),
            RequestBody::SetData(r) => r.encode(out),
            RequestBody::GetAcl(r) => r.encode(out),
            RequestBody::SetAcl(r) => r.encode(out),
            RequestBody::GetChildren(r) | RequestBody::GetChildren2(r) => r.encode(out),
            RequestBody::Sync(r) => r.encode(out),
            RequestBody::Multi(r) | RequestBody::MultiRead(r) => r.encode(out),
            RequestBody::Reconfig(r) => r.encode(out),
            RequestBody::CheckWatches(r) | RequestBody::RemoveWatches(r) => r.encode(out),
            RequestBody::Auth(r) => r.encode(out),
            RequestBody::SetWatches(r) => r.encode(out),
            RequestBody::SetWatches2(r) => r.encode(out),
            RequestBody::Sasl(r) => r.encode(out),
            RequestBody::GetEphemerals(r) => r.encode(out),
            RequestBody::GetAllChildrenNumber(r) => r.encode(out),
            RequestBody::AddWatch(r) => r.encode(out),
            RequestBody::Ping | RequestBody::WhoAmI | RequestBody::CloseSession => {}
        }
    }

    /// Reads the body of a request with the given opcode. `None` means the
    /// opcode is not a request a server accepts.
    pub fn decode<B: Buf>(opcode: i32, input: &mut B) -> Option<Result<RequestBody, DecodeError>> {
        let op = OpCode::from_i32(opcode).filter(|op| op.is_valid_request())?;
        Some(Self::decode_op(op, input))
    }

    fn decode_op<B: Buf>(op: OpCode, input: &mut B) -> Result<RequestBody, DecodeError> {
        Ok(match op {
            OpCode::Create => RequestBody::Create(Record::decode(input)?),
            OpCode::Create2 => RequestBody::Create2(Record::decode(input)?),
            OpCode::CreateContainer => RequestBody::CreateContainer(Record::decode(input)?),
            OpCode::CreateTtl => RequestBody::CreateTtl(Record::decode(input)?),
            OpCode::Delete => RequestBody::Delete(Record::decode(input)?),
            OpCode::DeleteContainer => RequestBody::DeleteContainer(Record::decode(input)?),
            OpCode::Exists => RequestBody::Exists(Record::decode(input)?),
            OpCode::GetData => RequestBody::GetData(Record::decode(input)?),
            OpCode::SetData => RequestBody::SetData(Record::decode(input)?),
            OpCode::GetAcl => RequestBody::GetAcl(Record::decode(input)?),
            OpCode::SetAcl => RequestBody::SetAcl(Record::decode(input)?),
            OpCode::GetChildren => RequestBody::GetChildren(Record::decode(input)?),
            OpCode::GetChildren2 => RequestBody::GetChildren2(Record::decode(input)?),
            OpCode::Sync => RequestBody::Sync(Record::decode(input)?),
            OpCode::Ping => RequestBody::Ping,
            OpCode::Multi => RequestBody::Multi(Record::decode(input)?),
            OpCode::MultiRead => RequestBody::MultiRead(Record::decode(input)?),
            OpCode::Reconfig => RequestBody::Reconfig(Record::decode(input)?),
            OpCode::CheckWatches => RequestBody::CheckWatches(Record::decode(input)?),
            OpCode::RemoveWatches => RequestBody::RemoveWatches(Record::decode(input)?),
            OpCode::Auth => RequestBody::Auth(Record::decode(input)?),
            OpCode::SetWatches => RequestBody::SetWatches(Record::decode(input)?),
            OpCode::SetWatches2 => RequestBody::SetWatches2(Record::decode(input)?),
            OpCode::Sasl => RequestBody::Sasl(Record::decode(input)?),
            OpCode::GetEphemerals => RequestBody::GetEphemerals(Record::decode(input)?),
            OpCode::GetAllChildrenNumber => {
                RequestBody::GetAllChildrenNumber(Record::decode(input)?)
            }
            OpCode::AddWatch => RequestBody::AddWatch(Record::decode(input)?),
            OpCode::WhoAmI => RequestBody::WhoAmI,
            OpCode::CloseSession => RequestBody::CloseSession,
            OpCode::Notification | OpCode::Check | OpCode::Error | OpCode::CreateSession => {
                // `decode` filters these out; answer as for a bad body anyway.
                return Err(DecodeError::invalid("RequestHeader.type", "not a request"));
            }
        })
    }
}

/// A whole request frame's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct Request {
    pub xid: i32,
    pub body: RequestBody,
}

/// Why a request payload could not be read; each kind has its own answer
/// (protocol section 5.7).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// Too short for a RequestHeader: close without replying.
    #[error("request frame has no header: {0}")]
    NoHeader(DecodeError),
    /// Not an accepted opcode: reply UNIMPLEMENTED with zxid -1, then close.
    #[error("unimplemented opcode {} (xid {})", .header.opcode, .header.xid)]
    Unimplemented { header: RequestHeader },
    /// The body does not decode: reply MARSHALLINGERROR and keep going.
    #[error("malformed body for opcode {} (xid {}): {error}", .header.opcode, .header.xid)]
    Malformed {
        header: RequestHeader,
        error: DecodeError,
    },
}

impl Request {
    pub fn new(xid: i32, body: RequestBody) -> Request {
        Request { xid, body }
    }

    /// A ping with its fixed xid.
    pub fn ping() -> Request {
        Request::new(xid::PING, RequestBody::Ping)
    }

    pub fn header(&self) -> RequestHeader {
        RequestHeader {
            xid: self.xid,
            opcode: self.body.opcode().as_i32(),
        }
    }

    /// Appends header and body (no length prefix).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        self.header().encode(out);
        self.body.encode(out);
    }

    /// Reads a request from a frame's whole payload. Bytes after the record
    /// are ignored, as every ZooKeeper reader does.
    pub fn decode<B: Buf>(payload: &mut B) -> Result<Request, RequestError> {
        let header = RequestHeader::decode(payload).map_err(RequestError::NoHeader)?;
        match RequestBody::decode(header.opcode, payload) {
            None => Err(RequestError::Unimplemented { header }),
            Some(Err(error)) => Err(RequestError::Malformed { header, error }),
            Some(Ok(body)) => Ok(Request {
                xid: header.xid,
                body,
            }),
        }
    }
}
