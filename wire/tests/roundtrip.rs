//! Every record, enum and envelope re-encodes to the bytes it came from, and
//! decoding consumes exactly its own bytes.

use proptest::prelude::*;
use zoo_wire::*;

include!("support/records.rs");

macro_rules! record_round_trips {
    ($($name:ident: $ty:ty,)*) => {
        proptest! {
            $(
                #[test]
                fn $name(value in any::<$ty>()) {
                    let bytes = value.to_bytes();
                    let mut input = &bytes[..];
                    let decoded = <$ty>::decode(&mut input).unwrap();
                    prop_assert_eq!(&decoded, &value);
                    prop_assert!(input.is_empty(), "{} bytes left over", input.len());
                    prop_assert_eq!(decoded.to_bytes(), bytes);
                }
            )*
        }
    };
}

for_every_record!(record_round_trips);

macro_rules! enum_round_trips {
    ($($name:ident: $ty:ty,)*) => {
        $(
            #[test]
            fn $name() {
                for v in <$ty>::ALL {
                    assert_eq!(<$ty>::from_i32(v.as_i32()), Some(*v));
                    let mut input = &v.as_i32().to_be_bytes()[..];
                    assert_eq!(<$ty>::decode(&mut input, "field"), Ok(*v));
                }
                let mut values: Vec<i32> = <$ty>::ALL.iter().map(|v| v.as_i32()).collect();
                values.sort();
                values.dedup();
                assert_eq!(values.len(), <$ty>::ALL.len(), "duplicate values");
            }
        )*
        proptest! {
            #[test]
            fn enums_accept_only_their_values(raw in any::<i32>()) {
                $(
                    match <$ty>::from_i32(raw) {
                        Some(v) => prop_assert_eq!(v.as_i32(), raw),
                        None => {
                            prop_assert!(<$ty>::ALL.iter().all(|v| v.as_i32() != raw));
                            let mut input = &raw.to_be_bytes()[..];
                            let err = <$ty>::decode(&mut input, "field").unwrap_err();
                            let is_invalid = matches!(err, DecodeError::Invalid { .. });
                            prop_assert!(is_invalid, "{}", err);
                        }
                    }
                )*
            }
        }
    };
}

enum_round_trips! {
    opcode: OpCode,
    create_mode: CreateMode,
    event_type: EventType,
    keeper_state: KeeperState,
    watcher_type: WatcherType,
    add_watch_mode: AddWatchMode,
    four_letter_word: FourLetterWord,
}

proptest! {
    #[test]
    fn error_codes(code in any::<ErrorCode>(), raw in any::<i32>()) {
        prop_assert_eq!(ErrorCode::from_i32(code.as_i32()), code);
        prop_assert_eq!(ErrorCode::from_i32(raw).as_i32(), raw);
    }

    #[test]
    fn perms_keep_every_bit(perms in any::<Perms>()) {
        let acl = Acl { perms, id: Id::anyone() };
        prop_assert_eq!(Acl::decode(&mut &acl.to_bytes()[..]).unwrap().perms, perms);
    }

    #[test]
    fn requests(request in any::<Request>()) {
        let mut bytes = Vec::new();
        request.encode(&mut bytes);
        let decoded = Request::decode(&mut &bytes[..]).unwrap();
        prop_assert_eq!(&decoded, &request);
        let mut again = Vec::new();
        decoded.encode(&mut again);
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn replies(xid in 1..i32::MAX, zxid in any::<i64>(), body in any::<ResponseBody>()) {
        let op = opcode_answered_by(&body);
        let message = match body {
            ResponseBody::Empty => ServerMessage::header_only(xid, zxid, ErrorCode::Ok),
            body => ServerMessage::ok(xid, zxid, body),
        };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        let decoded = ServerMessage::decode(&mut &bytes[..], |x| (x == xid).then_some(op)).unwrap();
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn error_replies_have_no_body(xid in any::<i32>(), zxid in any::<i64>(), code in any::<ErrorCode>()) {
        prop_assume!(!code.is_ok() && xid != -1);
        let message = ServerMessage::header_only(xid, zxid, code);
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        prop_assert_eq!(bytes.len(), 16);
        // The opcode is not even asked for: no body is read after an error.
        let decoded = ServerMessage::decode(&mut &bytes[..], |_| None).unwrap();
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn notifications(zxid in any::<i64>(), event in any::<WatcherEvent>()) {
        let message = ServerMessage::Notification { zxid, event };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        prop_assert_eq!(ServerMessage::decode(&mut &bytes[..], |_| None).unwrap(), message);
    }

    #[test]
    fn frames(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)) {
        use tokio_util::codec::Decoder;
        let mut stream = bytes::BytesMut::new();
        for p in &payloads {
            codec::write_frame(&mut stream, &p[..]);
        }
        let mut codec = FrameCodec::default();
        let mut decoded = Vec::new();
        while let Some(frame) = codec.decode(&mut stream).unwrap() {
            decoded.push(frame.to_vec());
        }
        prop_assert_eq!(decoded, payloads);
        prop_assert!(stream.is_empty());
    }
}

/// The opcode of a request whose reply carries `body`.
fn opcode_answered_by(body: &ResponseBody) -> OpCode {
    match body {
        ResponseBody::Empty => OpCode::Delete,
        ResponseBody::Create(_) => OpCode::Create,
        ResponseBody::Create2(_) => OpCode::Create2,
        ResponseBody::Exists(_) => OpCode::Exists,
        ResponseBody::GetData(_) => OpCode::GetData,
        ResponseBody::SetData(_) => OpCode::SetData,
        ResponseBody::GetAcl(_) => OpCode::GetAcl,
        ResponseBody::SetAcl(_) => OpCode::SetAcl,
        ResponseBody::GetChildren(_) => OpCode::GetChildren,
        ResponseBody::GetChildren2(_) => OpCode::GetChildren2,
        ResponseBody::Sync(_) => OpCode::Sync,
        ResponseBody::Multi(_) => OpCode::Multi,
        ResponseBody::AddWatch(_) => OpCode::AddWatch,
        ResponseBody::GetEphemerals(_) => OpCode::GetEphemerals,
        ResponseBody::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
        ResponseBody::WhoAmI(_) => OpCode::WhoAmI,
        ResponseBody::Sasl(_) => OpCode::Sasl,
    }
}

#[test]
fn the_documented_create_example() {
    // Protocol section 16: create("/a", "hi", OPEN_ACL_UNSAFE, PERSISTENT), xid 1.
    let request = Request::new(
        1,
        RequestBody::Create(CreateRequest {
            path: "/a".into(),
            data: Some(bytes::Bytes::from_static(b"hi")),
            acl: Some(Acl::open_unsafe()),
            flags: CreateMode::Persistent.as_i32(),
        }),
    );
    let mut frame = bytes::BytesMut::new();
    codec::write_frame(&mut frame, &request);
    let expected: Vec<u8> = [
        &[
            0, 0, 0, 0x33, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, b'/', b'a',
        ][..],
        &[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 1, 0, 0, 0, 0x1f][..],
        &[0, 0, 0, 5, b'w', b'o', b'r', b'l', b'd', 0, 0, 0, 6][..],
        b"anyone",
        &[0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(&frame[..], &expected[..]);
}

#[test]
fn the_documented_multi_failure_example() {
    // Protocol section 16: [check("/a", 0), delete("/b", -1)], the check fails.
    let response = MultiResponse {
        results: vec![
            OpResult::Error(ErrorCode::BadVersion),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ],
    };
    let expected: Vec<u8> = [
        &[
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x99, 0xff, 0xff, 0xff, 0x99,
        ][..],
        &[
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe,
        ][..],
        &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff][..],
    ]
    .concat();
    assert_eq!(response.to_bytes(), expected);
}
