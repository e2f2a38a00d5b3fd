//! What the server sends after the handshake: replies (ReplyHeader, then the
//! record of the request's opcode when `err` is 0) and watch notifications
//! (xid -1).

use bytes::{Buf, BufMut};

use crate::error::{DecodeError, DecodeResult};
use crate::error_code::ErrorCode;
use crate::jute::Record;
use crate::multi::MultiResponse;
use crate::opcode::{xid, OpCode};
use crate::proto::{
    Create2Response, CreateResponse, ErrorResponse, ExistsResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, ReplyHeader, SaslToken, SetAclResponse, SetDataResponse, SyncRequest,
    WhoAmIResponse,
};
use crate::watch::WatcherEvent;

/// The body of a successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub enum ResponseBody {
    /// Operations whose reply is the header alone.
    Empty,
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    Exists(ExistsResponse),
    /// getData, and reconfig (the new config and the Stat of /zookeeper/config).
    GetData(GetDataResponse),
    SetData(SetDataResponse),
    GetAcl(GetAclResponse),
    SetAcl(SetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    /// sync echoes its path.
    Sync(SyncRequest),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// addWatch's bare `err` int (0).
    AddWatch(ErrorResponse),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    WhoAmI(WhoAmIResponse),
    Sasl(SaslToken),
}

impl ResponseBody {
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            ResponseBody::Empty => {}
            ResponseBody::Create(r) => r.encode(out),
            ResponseBody::Create2(r) => r.encode(out),
            ResponseBody::Exists(r) => r.encode(out),
            ResponseBody::GetData(r) => r.encode(out),
            ResponseBody::SetData(r) => r.encode(out),
            ResponseBody::GetAcl(r) => r.encode(out),
            ResponseBody::SetAcl(r) => r.encode(out),
            ResponseBody::GetChildren(r) => r.encode(out),
            ResponseBody::GetChildren2(r) => r.encode(out),
            ResponseBody::Sync(r) => r.encode(out),
            ResponseBody::Multi(r) => r.encode(out),
            ResponseBody::AddWatch(r) => r.encode(out),
            ResponseBody::GetEphemerals(r) => r.encode(out),
            ResponseBody::GetAllChildrenNumber(r) => r.encode(out),
            ResponseBody::WhoAmI(r) => r.encode(out),
            ResponseBody::Sasl(r) => r.encode(out),
        }
    }

    /// Reads the success body of a reply to a request with opcode `op`.
    pub fn decode<B: Buf>(op: OpCode, input: &mut B) -> DecodeResult<ResponseBody> {
        Ok(match op {
            OpCode::Create => ResponseBody::Create(Record::decode(input)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                ResponseBody::Create2(Record::decode(input)?)
            }
            OpCode::Exists => ResponseBody::Exists(Record::decode(input)?),
            OpCode::GetData | OpCode::Reconfig => ResponseBody::GetData(Record::decode(input)?),
            OpCode::SetData => ResponseBody::SetData(Record::decode(input)?),
            OpCode::GetAcl => ResponseBody::GetAcl(Record::decode(input)?),
            OpCode::SetAcl => ResponseBody::SetAcl(Record::decode(input)?),
            OpCode::GetChildren => ResponseBody::GetChildren(Record::decode(input)?),
            OpCode::GetChildren2 => ResponseBody::GetChildren2(Record::decode(input)?),
            OpCode::Sync => ResponseBody::Sync(Record::decode(input)?),
            OpCode::Multi | OpCode::MultiRead => ResponseBody::Multi(Record::decode(input)?),
            OpCode::AddWatch => ResponseBody::AddWatch(Record::decode(input)?),
            OpCode::GetEphemerals => ResponseBody::GetEphemerals(Record::decode(input)?),
            OpCode::GetAllChildrenNumber => {
                ResponseBody::GetAllChildrenNumber(Record::decode(input)?)
            }
            OpCode::WhoAmI => ResponseBody::WhoAmI(Record::decode(input)?),
            OpCode::Sasl => ResponseBody::Sasl(Record::decode(input)?),
            OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Ping
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CloseSession
            | OpCode::CreateSession => ResponseBody::Empty,
            OpCode::Notification | OpCode::Check | OpCode::Error => {
                return Err(DecodeError::invalid(
                    "ReplyHeader.xid",
                    format!("no reply body for opcode {}", op.as_i32()),
                ))
            }
        })
    }
}

/// A frame from the server after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub enum ServerMessage {
    /// A watch notification (xid -1).
    Notification { zxid: i64, event: WatcherEvent },
    /// A reply; `body` is present when `header.err` is `Ok` and the
    /// operation has a reply record.
    Reply {
        header: ReplyHeader,
        body: Option<ResponseBody>,
    },
}

impl ServerMessage {
    /// A reply with a body.
    pub fn ok(xid: i32, zxid: i64, body: ResponseBody) -> ServerMessage {
        ServerMessage::Reply {
            header: ReplyHeader {
                xid,
                zxid,
                err: ErrorCode::Ok,
            },
            body: Some(body),
        }
    }

    /// A reply that is a header alone: an error, or an op without a body.
    pub fn header_only(xid: i32, zxid: i64, err: ErrorCode) -> ServerMessage {
        ServerMessage::Reply {
            header: ReplyHeader { xid, zxid, err },
            body: None,
        }
    }

    /// Appends the message (no length prefix).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            ServerMessage::Notification { zxid, event } => {
                ReplyHeader {
                    xid: xid::NOTIFICATION,
                    zxid: *zxid,
                    err: ErrorCode::Ok,
                }
                .encode(out);
                event.encode(out);
            }
            ServerMessage::Reply { header, body } => {
                header.encode(out);
                if let Some(body) = body {
                    body.encode(out);
                }
            }
        }
    }

    /// Reads a message from a frame's whole payload. `opcode_of` gives the
    /// opcode of the pending request with the reply's xid (pings and auth
    /// have fixed xids). A reply's body is read only when `err` is 0; bytes
    /// after the record are ignored.
    pub fn decode<B: Buf>(
        payload: &mut B,
        opcode_of: impl FnOnce(i32) -> Option<OpCode>,
    ) -> DecodeResult<ServerMessage> {
        let header = ReplyHeader::decode(payload)?;
        if header.xid == xid::NOTIFICATION {
            return Ok(ServerMessage::Notification {
                zxid: header.zxid,
                event: WatcherEvent::decode(payload)?,
            });
        }
        if !header.err.is_ok() {
            return Ok(ServerMessage::Reply { header, body: None });
        }
        let op = match header.xid {
            xid::PING => OpCode::Ping,
            xid::AUTH => OpCode::Auth,
            other => opcode_of(other).ok_or_else(|| {
                DecodeError::invalid(
                    "ReplyHeader.xid",
                    format!("no request is pending with xid {other}"),
                )
            })?,
        };
        let body = ResponseBody::decode(op, payload)?;
        Ok(ServerMessage::Reply {
            header,
            body: match body {
                ResponseBody::Empty => None,
                body => Some(body),
            },
        })
    }
}
