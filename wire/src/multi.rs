//! multi (14) and multiRead (22): a sequence of operations, each behind a
//! MultiHeader, ended by a header with `done` set (protocol section 11).

use bytes::{Buf, BufMut};

use crate::create_mode::CreateMode;
use crate::error::{DecodeError, DecodeResult};
use crate::error_code::ErrorCode;
use crate::jute::Record;
use crate::opcode::OpCode;
use crate::proto::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ErrorResponse, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse, MultiHeader, SetDataRequest, SetDataResponse,
};

/// The header that ends a multi request or response: `ff ff ff ff 01 ff ff ff ff`.
const END: MultiHeader = MultiHeader {
    op_type: -1,
    done: true,
    err: -1,
};

/// One operation of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub enum MultiOp {
    Create(#[cfg_attr(feature = "arbitrary", proptest(strategy = "valid_create()"))] CreateRequest),
    Create2(
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "valid_create()"))] CreateRequest,
    ),
    CreateContainer(
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "valid_create()"))] CreateRequest,
    ),
    CreateTtl(
        #[cfg_attr(feature = "arbitrary", proptest(strategy = "valid_create_ttl()"))]
        CreateTtlRequest,
    ),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

#[cfg(feature = "arbitrary")]
fn valid_create() -> impl proptest::strategy::Strategy<Value = CreateRequest> {
    use proptest::prelude::*;
    (any::<CreateRequest>(), 0..7i32).prop_map(|(mut r, flags)| {
        r.flags = flags;
        r
    })
}

#[cfg(feature = "arbitrary")]
fn valid_create_ttl() -> impl proptest::strategy::Strategy<Value = CreateTtlRequest> {
    use proptest::prelude::*;
    (any::<CreateTtlRequest>(), 0..7i32).prop_map(|(mut r, flags)| {
        r.flags = flags;
        r
    })
}

impl MultiOp {
    /// The MultiHeader type of this operation.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// True for the operations a multiRead may hold.
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    /// The path the operation acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    fn encode_body<B: BufMut>(&self, out: &mut B) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(out),
            MultiOp::CreateTtl(r) => r.encode(out),
            MultiOp::Delete(r) => r.encode(out),
            MultiOp::SetData(r) => r.encode(out),
            MultiOp::Check(r) => r.encode(out),
            MultiOp::GetChildren(r) => r.encode(out),
            MultiOp::GetData(r) => r.encode(out),
        }
    }

    fn decode_body<B: Buf>(op_type: i32, input: &mut B) -> DecodeResult<MultiOp> {
        let op = match OpCode::from_i32(op_type) {
            Some(OpCode::Create) => MultiOp::Create(checked_create(CreateRequest::decode(input)?)?),
            Some(OpCode::Create2) => {
                MultiOp::Create2(checked_create(CreateRequest::decode(input)?)?)
            }
            Some(OpCode::CreateContainer) => {
                MultiOp::CreateContainer(checked_create(CreateRequest::decode(input)?)?)
            }
            Some(OpCode::CreateTtl) => {
                let r = CreateTtlRequest::decode(input)?;
                check_flags(r.flags)?;
                MultiOp::CreateTtl(r)
            }
            Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::decode(input)?),
            Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::decode(input)?),
            Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::decode(input)?),
            Some(OpCode::GetChildren) => MultiOp::GetChildren(GetChildrenRequest::decode(input)?),
            Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::decode(input)?),
            _ => {
                return Err(DecodeError::invalid(
                    "MultiHeader.type",
                    format!("{op_type} is not an operation a multi can hold"),
                ))
            }
        };
        Ok(op)
    }
}

/// Inside a multi an unknown create mode fails the whole request while
/// decoding (MARSHALLINGERROR), unlike a top-level create (BADARGUMENTS).
fn check_flags(flags: i32) -> DecodeResult<()> {
    match CreateMode::from_i32(flags) {
        Some(_) => Ok(()),
        None => Err(DecodeError::invalid(
            "CreateRequest.flags",
            format!("{flags} is not a create mode"),
        )),
    }
}

fn checked_create(r: CreateRequest) -> DecodeResult<CreateRequest> {
    check_flags(r.flags)?;
    Ok(r)
}

/// The body of a multi or multiRead request. A request mixing reads and
/// writes does not decode, as in ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct MultiRequest {
    #[cfg_attr(feature = "arbitrary", proptest(strategy = "unmixed_ops()"))]
    pub ops: Vec<MultiOp>,
}

#[cfg(feature = "arbitrary")]
fn unmixed_ops() -> impl proptest::strategy::Strategy<Value = Vec<MultiOp>> {
    use proptest::prelude::*;
    proptest::collection::vec(any::<MultiOp>(), 0..6).prop_map(|mut ops| {
        let reads = ops.first().is_some_and(MultiOp::is_read);
        ops.retain(|op| op.is_read() == reads);
        ops
    })
}

impl MultiRequest {
    /// True when every operation is a read (an empty request counts as writes).
    pub fn is_read_only(&self) -> bool {
        !self.ops.is_empty() && self.ops.iter().all(MultiOp::is_read)
    }
}

impl Record for MultiRequest {
    const MIN_LEN: usize = 9;

    fn encode<B: BufMut>(&self, out: &mut B) {
        for op in &self.ops {
            MultiHeader {
                op_type: op.opcode().as_i32(),
                done: false,
                err: -1,
            }
            .encode(out);
            op.encode_body(out);
        }
        END.encode(out);
    }

    fn decode<B: Buf>(input: &mut B) -> DecodeResult<Self> {
        let mut ops: Vec<MultiOp> = Vec::new();
        // Bounded: each pass consumes at least the 9-byte header.
        loop {
            let header = MultiHeader::decode(input)?;
            if header.done {
                return Ok(MultiRequest { ops });
            }
            let op = MultiOp::decode_body(header.op_type, input)?;
            if let Some(first) = ops.first() {
                if first.is_read() != op.is_read() {
                    return Err(DecodeError::invalid(
                        "MultiRequest",
                        "reads and writes cannot be mixed",
                    ));
                }
            }
            ops.push(op);
        }
    }
}

/// The result of one operation of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub enum OpResult {
    Create(CreateResponse),
    /// create2, createContainer and createTTL.
    Create2(Create2Response),
    Delete,
    SetData(SetDataResponse),
    Check,
    GetChildren(GetChildrenResponse),
    GetData(GetDataResponse),
    /// A failed or rolled-back operation; `Ok` marks one rolled back after
    /// it had succeeded.
    Error(ErrorCode),
}

impl OpResult {
    fn op_type(&self) -> i32 {
        match self {
            OpResult::Create(_) => OpCode::Create.as_i32(),
            OpResult::Create2(_) => OpCode::Create2.as_i32(),
            OpResult::Delete => OpCode::Delete.as_i32(),
            OpResult::SetData(_) => OpCode::SetData.as_i32(),
            OpResult::Check => OpCode::Check.as_i32(),
            OpResult::GetChildren(_) => OpCode::GetChildren.as_i32(),
            OpResult::GetData(_) => OpCode::GetData.as_i32(),
            OpResult::Error(_) => OpCode::Error.as_i32(),
        }
    }
}

/// The body of a multi or multiRead reply (sent with header err 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct MultiResponse {
    pub results: Vec<OpResult>,
}

impl Record for MultiResponse {
    const MIN_LEN: usize = 9;

    fn encode<B: BufMut>(&self, out: &mut B) {
        for result in &self.results {
            let err = match result {
                OpResult::Error(code) => code.as_i32(),
                _ => 0,
            };
            MultiHeader {
                op_type: result.op_type(),
                done: false,
                err,
            }
            .encode(out);
            match result {
                OpResult::Create(r) => r.encode(out),
                OpResult::Create2(r) => r.encode(out),
                OpResult::SetData(r) => r.encode(out),
                OpResult::GetChildren(r) => r.encode(out),
                OpResult::GetData(r) => r.encode(out),
                OpResult::Error(code) => ErrorResponse { err: *code }.encode(out),
                OpResult::Delete | OpResult::Check => {}
            }
        }
        END.encode(out);
    }

    fn decode<B: Buf>(input: &mut B) -> DecodeResult<Self> {
        let mut results = Vec::new();
        // Bounded: each pass consumes at least the 9-byte header.
        loop {
            let header = MultiHeader::decode(input)?;
            if header.done {
                return Ok(MultiResponse { results });
            }
            let result = match OpCode::from_i32(header.op_type) {
                Some(OpCode::Create) => OpResult::Create(CreateResponse::decode(input)?),
                Some(OpCode::Create2) => OpResult::Create2(Create2Response::decode(input)?),
                Some(OpCode::Delete) => OpResult::Delete,
                Some(OpCode::SetData) => OpResult::SetData(SetDataResponse::decode(input)?),
                Some(OpCode::Check) => OpResult::Check,
                Some(OpCode::GetChildren) => {
                    OpResult::GetChildren(GetChildrenResponse::decode(input)?)
                }
                Some(OpCode::GetData) => OpResult::GetData(GetDataResponse::decode(input)?),
                Some(OpCode::Error) => OpResult::Error(ErrorResponse::decode(input)?.err),
                _ => {
                    return Err(DecodeError::invalid(
                        "MultiHeader.type",
                        format!("{} is not a multi result type", header.op_type),
                    ))
                }
            };
            results.push(result);
        }
    }
}
