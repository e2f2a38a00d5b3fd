//! Protocol records (`org.apache.zookeeper.proto`): headers, the handshake,
//! and the request and response of every operation (protocol section 3.2).

use bytes::{Buf, BufMut, Bytes};

use crate::data::{Acl, ClientInfo, Stat};
use crate::error::DecodeResult;
use crate::error_code::ErrorCode;
use crate::field::{record, Field};
use crate::jute::{self, Record};
use crate::watch::{AddWatchMode, WatcherType};

/// The first frame of a connection, client to server (protocol section 4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct ConnectRequest {
    pub protocol_version: i32,
    /// The highest zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout in ms.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::bytes()"))]
    pub passwd: Bytes,
    /// `None` when the client (older than 3.4) did not send the byte. The
    /// server answers in the same shape.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const MIN_LEN: usize = 28;

    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_i32(self.protocol_version);
        out.put_i64(self.last_zxid_seen);
        out.put_i32(self.timeout_ms);
        out.put_i64(self.session_id);
        self.passwd.write_field(out);
        if let Some(read_only) = self.read_only {
            jute::write_bool(out, read_only);
        }
    }

    fn decode<B: Buf>(input: &mut B) -> DecodeResult<Self> {
        Ok(ConnectRequest {
            protocol_version: jute::read_i32(input, "ConnectRequest.protocolVersion")?,
            last_zxid_seen: jute::read_i64(input, "ConnectRequest.lastZxidSeen")?,
            timeout_ms: jute::read_i32(input, "ConnectRequest.timeOut")?,
            session_id: jute::read_i64(input, "ConnectRequest.sessionId")?,
            passwd: Field::read_field(input, "ConnectRequest.passwd")?,
            read_only: read_optional_bool(input, "ConnectRequest.readOnly")?,
        })
    }
}

/// The first frame from the server (protocol section 4.5). A timeout of 0
/// means the session is invalid or expired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// Negotiated session timeout in ms.
    pub timeout_ms: i32,
    pub session_id: i64,
    #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::bytes()"))]
    pub passwd: Bytes,
    /// Whether the server is read-only; written only if the client's request
    /// carried the readOnly byte.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The answer to a resume of an unknown, expired or closing session.
    pub fn invalid_session(read_only: Option<bool>) -> ConnectResponse {
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only,
        }
    }
}

impl Record for ConnectResponse {
    const MIN_LEN: usize = 20;

    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_i32(self.protocol_version);
        out.put_i32(self.timeout_ms);
        out.put_i64(self.session_id);
        self.passwd.write_field(out);
        if let Some(read_only) = self.read_only {
            jute::write_bool(out, read_only);
        }
    }

    fn decode<B: Buf>(input: &mut B) -> DecodeResult<Self> {
        Ok(ConnectResponse {
            protocol_version: jute::read_i32(input, "ConnectResponse.protocolVersion")?,
            timeout_ms: jute::read_i32(input, "ConnectResponse.timeOut")?,
            session_id: jute::read_i64(input, "ConnectResponse.sessionId")?,
            passwd: Field::read_field(input, "ConnectResponse.passwd")?,
            read_only: read_optional_bool(input, "ConnectResponse.readOnly")?,
        })
    }
}

/// The trailing readOnly byte is present only if the frame goes on.
fn read_optional_bool<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Option<bool>> {
    if input.has_remaining() {
        jute::read_bool(input, what).map(Some)
    } else {
        Ok(None)
    }
}

record! {
    /// Precedes every request after the handshake.
    pub struct RequestHeader (min_len = 8) {
        pub xid: i32,
        /// The raw opcode; see `OpCode::from_i32`.
        pub opcode: i32,
    }
}

record! {
    /// Precedes every reply and notification after the handshake.
    pub struct ReplyHeader (min_len = 16) {
        pub xid: i32,
        pub zxid: i64,
        pub err: ErrorCode,
    }
}

record! {
    /// Precedes each operation and each result inside a multi.
    pub struct MultiHeader (min_len = 9) {
        pub op_type: i32,
        pub done: bool,
        pub err: i32,
    }
}

record! {
    /// An `addauth`, sent with xid -4.
    pub struct AuthPacket (min_len = 12) {
        /// Always 0 in practice.
        pub auth_type: i32,
        pub scheme: String,
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::opt_bytes()"))]
        pub auth: Option<Bytes>,
    }
}

record! {
    /// Restores one-shot watches after a reconnect.
    pub struct SetWatches (min_len = 20) {
        /// The client's last seen zxid.
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

record! {
    /// Restores one-shot and persistent watches after a reconnect.
    pub struct SetWatches2 (min_len = 28) {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// create, create2 and createContainer.
    pub struct CreateRequest (min_len = 16) {
        pub path: String,
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::opt_bytes()"))]
        pub data: Option<Bytes>,
        /// A null list is answered with INVALIDACL, so it is kept apart.
        pub acl: Option<Vec<Acl>>,
        /// The raw create mode; see `CreateMode::from_i32`.
        pub flags: i32,
    }
}

record! {
    /// createTTL.
    pub struct CreateTtlRequest (min_len = 24) {
        pub path: String,
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::opt_bytes()"))]
        pub data: Option<Bytes>,
        pub acl: Option<Vec<Acl>>,
        pub flags: i32,
        pub ttl: i64,
    }
}

record! {
    /// The name actually created, with any sequence suffix.
    pub struct CreateResponse (min_len = 4) {
        pub path: String,
    }
}

record! {
    pub struct Create2Response (min_len = 72) {
        pub path: String,
        pub stat: Stat,
    }
}

record! {
    pub struct DeleteRequest (min_len = 8) {
        pub path: String,
        /// -1 matches any version.
        pub version: i32,
    }
}

record! {
    /// deleteContainer. Java writes the path as a buffer; the bytes are those
    /// of a ustring.
    pub struct DeleteContainerRequest (min_len = 4) {
        pub path: String,
    }
}

record! {
    pub struct ExistsRequest (min_len = 5) {
        pub path: String,
        pub watch: bool,
    }
}

record! {
    pub struct ExistsResponse (min_len = 68) {
        pub stat: Stat,
    }
}

record! {
    pub struct GetDataRequest (min_len = 5) {
        pub path: String,
        pub watch: bool,
    }
}

record! {
    /// Also the body of a reconfig reply.
    pub struct GetDataResponse (min_len = 72) {
        /// Null when the node was created with null data.
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::opt_bytes()"))]
        pub data: Option<Bytes>,
        pub stat: Stat,
    }
}

record! {
    pub struct SetDataRequest (min_len = 12) {
        pub path: String,
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::opt_bytes()"))]
        pub data: Option<Bytes>,
        pub version: i32,
    }
}

record! {
    pub struct SetDataResponse (min_len = 68) {
        pub stat: Stat,
    }
}

record! {
    pub struct GetAclRequest (min_len = 4) {
        pub path: String,
    }
}

record! {
    pub struct GetAclResponse (min_len = 72) {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }
}

record! {
    pub struct SetAclRequest (min_len = 12) {
        pub path: String,
        pub acl: Option<Vec<Acl>>,
        /// Expected aversion; -1 matches any.
        pub version: i32,
    }
}

record! {
    pub struct SetAclResponse (min_len = 68) {
        pub stat: Stat,
    }
}

record! {
    /// getChildren and getChildren2.
    pub struct GetChildrenRequest (min_len = 5) {
        pub path: String,
        pub watch: bool,
    }
}

record! {
    pub struct GetChildrenResponse (min_len = 4) {
        pub children: Vec<String>,
    }
}

record! {
    pub struct GetChildren2Response (min_len = 72) {
        pub children: Vec<String>,
        pub stat: Stat,
    }
}

record! {
    pub struct GetAllChildrenNumberRequest (min_len = 4) {
        pub path: String,
    }
}

record! {
    pub struct GetAllChildrenNumberResponse (min_len = 4) {
        pub total_number: i32,
    }
}

record! {
    /// check, only inside a multi.
    pub struct CheckVersionRequest (min_len = 8) {
        pub path: String,
        pub version: i32,
    }
}

record! {
    /// sync's request and its reply, which echoes the path.
    pub struct SyncRequest (min_len = 4) {
        pub path: String,
    }
}

record! {
    pub struct ReconfigRequest (min_len = 20) {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }
}

record! {
    /// A SASL token, both ways.
    pub struct SaslToken (min_len = 4) {
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "crate::arb::opt_bytes()"))]
        pub token: Option<Bytes>,
    }
}

record! {
    /// checkWatches and removeWatches.
    pub struct WatchesRequest (min_len = 8) {
        pub path: String,
        pub watcher_type: WatcherType,
    }
}

record! {
    pub struct AddWatchRequest (min_len = 8) {
        pub path: String,
        pub mode: AddWatchMode,
    }
}

record! {
    /// A bare error code: addWatch's reply, and a failed result in a multi.
    pub struct ErrorResponse (min_len = 4) {
        pub err: ErrorCode,
    }
}

record! {
    pub struct GetEphemeralsRequest (min_len = 4) {
        /// A plain string prefix; null, empty or `/` lists every ephemeral.
        pub prefix_path: Option<String>,
    }
}

record! {
    pub struct GetEphemeralsResponse (min_len = 4) {
        pub ephemerals: Vec<String>,
    }
}

record! {
    pub struct WhoAmIResponse (min_len = 4) {
        pub client_info: Vec<ClientInfo>,
    }
}
