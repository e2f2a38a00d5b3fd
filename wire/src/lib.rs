//! `zoo-wire`: every byte Zoo puts on a socket.
//!
//! ZooKeeper's client protocol, byte for byte (see the design's
//! `zk-wire-protocol.md`): jute primitives, one type per record, the
//! enumerations, the request and reply envelopes, the frame codec with its
//! size limit and four-letter-word detection, and path validation.
//!
//! Guarantees: no I/O and no async; decoding never panics, whatever the
//! input, and returns a typed [`DecodeError`]; what decodes re-encodes to
//! the same bytes (golden vectors recorded from Apache ZooKeeper hold us to
//! it); null and empty strings, buffers and vectors stay distinct where the
//! protocol gives them different meanings.

#[cfg(feature = "arbitrary")]
pub mod arb;
pub mod codec;
pub mod create_mode;
pub mod data;
pub mod error;
pub mod error_code;
pub mod field;
pub mod four_letter;
mod int_enum;
pub mod jute;
pub mod multi;
pub mod opcode;
pub mod path;
pub mod peer;
pub mod proto;
pub mod request;
pub mod response;
pub mod watch;

pub use codec::{ClientFrame, FrameCodec, FrameError, ServerCodec, DEFAULT_MAX_FRAME_LEN};
pub use create_mode::CreateMode;
pub use data::{Acl, ClientInfo, Id, Perms, Stat};
pub use error::{DecodeError, DecodeResult};
pub use error_code::ErrorCode;
pub use four_letter::FourLetterWord;
pub use jute::Record;
pub use multi::{MultiOp, MultiRequest, MultiResponse, OpResult};
pub use opcode::OpCode;
pub use path::{validate_path, validate_sequential_path, PathError};
pub use proto::*;
pub use request::{Request, RequestBody, RequestError};
pub use response::{ResponseBody, ServerMessage};
pub use watch::{AddWatchMode, EventType, KeeperState, WatcherEvent, WatcherType};
