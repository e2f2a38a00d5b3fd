//! Decoders never panic: random bytes, truncated records and oversized or
//! negative lengths all come back as errors (or, for random bytes, as some
//! record), never as a panic or an allocation sized by a length field.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;
use zoo_wire::*;

include!("support/records.rs");

macro_rules! random_bytes_never_panic {
    ($($name:ident: $ty:ty,)*) => {
        proptest! {
            #[test]
            fn random_bytes_decode_or_fail(input in proptest::collection::vec(any::<u8>(), 0..256)) {
                $(
                    let _ = <$ty>::decode(&mut &input[..]);
                )*
            }
        }
    };
}

for_every_record!(random_bytes_never_panic);

macro_rules! truncations_fail {
    ($($name:ident: $ty:ty,)*) => {
        mod truncated {
            use super::*;
            proptest! {
                $(
                    #[test]
                    fn $name(value in any::<$ty>()) {
                        let bytes = value.to_bytes();
                        for cut in cuts(bytes.len()) {
                            let result = <$ty>::decode(&mut &bytes[..cut]);
                            if optional_tail_cut(&bytes, cut, stringify!($ty)) {
                                prop_assert!(result.is_ok());
                            } else {
                                let err = result.unwrap_err();
                                prop_assert!(err.is_incomplete(), "cut at {}: {}", cut, err);
                            }
                        }
                    }
                )*
            }
        }
    };
}

for_every_record!(truncations_fail);

/// Every cut of a short encoding; for a long one, 64 spread over it plus
/// the last 16, which keeps the property linear in the record's size.
fn cuts(len: usize) -> Vec<usize> {
    if len <= 96 {
        return (0..len).collect();
    }
    let step = len / 64;
    (0..len).step_by(step).chain(len - 16..len).collect()
}

/// The handshake records end in an optional readOnly byte: cutting exactly
/// that byte leaves a valid record of the older shape.
fn optional_tail_cut(bytes: &[u8], cut: usize, type_name: &str) -> bool {
    let fixed = match type_name {
        "ConnectRequest" => 24,
        "ConnectResponse" => 16,
        _ => return false,
    };
    let passwd_len = i32::from_be_bytes(bytes[fixed..fixed + 4].try_into().unwrap());
    let without_flag = fixed + 4 + passwd_len.max(0) as usize;
    cut == without_flag && bytes.len() == without_flag + 1
}

proptest! {
    #[test]
    fn requests_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(&mut &input[..]);
    }

    #[test]
    fn requests_with_a_valid_header_and_random_body(
        xid in any::<i32>(),
        opcode in prop_oneof![Just(14), Just(22), 0..23i32, 100..108i32, -11..0i32],
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut input = Vec::new();
        input.extend_from_slice(&xid.to_be_bytes());
        input.extend_from_slice(&opcode.to_be_bytes());
        input.extend_from_slice(&body);
        match Request::decode(&mut &input[..]) {
            Ok(r) => prop_assert_eq!(r.header().opcode, opcode),
            Err(RequestError::Unimplemented { header }) | Err(RequestError::Malformed { header, .. }) => {
                prop_assert_eq!(header, RequestHeader { xid, opcode });
            }
            Err(RequestError::NoHeader(e)) => prop_assert!(false, "header was complete: {}", e),
        }
    }

    #[test]
    fn replies_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..256),
        op in any::<OpCode>(),
    ) {
        let _ = ServerMessage::decode(&mut &input[..], |_| Some(op));
    }

    #[test]
    fn streams_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
        max in 0usize..128,
    ) {
        let mut codec = ServerCodec::new(max);
        let mut src = BytesMut::new();
        'feed: for chunk in chunks {
            src.extend_from_slice(&chunk);
            loop {
                match codec.decode(&mut src) {
                    Ok(Some(ClientFrame::Frame(f))) => prop_assert!(f.len() <= max),
                    Ok(Some(ClientFrame::FourLetterWord(..))) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            // The buffer never grows past one maximal frame plus a chunk.
            prop_assert!(src.len() <= 4 + max + 64);
        }
    }

    #[test]
    fn oversized_lengths_fail_before_the_payload(len in (DEFAULT_MAX_FRAME_LEN as i32 + 1)..=i32::MAX) {
        let mut codec = FrameCodec::default();
        let mut src = BytesMut::from(&len.to_be_bytes()[..]);
        let err = codec.decode(&mut src).unwrap_err();
        let too_large = matches!(err, FrameError::TooLarge { .. });
        prop_assert!(too_large, "{}", err);
        // Nothing was reserved for the announced payload.
        prop_assert!(src.capacity() < 1024);
    }

    #[test]
    fn negative_lengths_fail(len in i32::MIN..0) {
        let mut codec = FrameCodec::default();
        let mut src = BytesMut::from(&len.to_be_bytes()[..]);
        let negative = matches!(codec.decode(&mut src), Err(FrameError::NegativeLength(_)));
        prop_assert!(negative);
    }

    #[test]
    fn huge_vector_counts_do_not_allocate(count in 1_000_000i32..=i32::MAX) {
        // A GetChildrenResponse claiming `count` children with none present.
        let err = GetChildrenResponse::decode(&mut &count.to_be_bytes()[..]).unwrap_err();
        prop_assert!(err.is_incomplete());
    }
}

#[test]
fn a_short_frame_has_no_header() {
    assert!(matches!(
        Request::decode(&mut &[0u8, 0, 0, 1, 0, 0][..]),
        Err(RequestError::NoHeader(_))
    ));
}

#[test]
fn unaccepted_opcodes_are_unimplemented() {
    for opcode in [0, 10, 13, -1, -10, 23, 99, 108, i32::MAX] {
        let mut input = Vec::new();
        input.extend_from_slice(&7i32.to_be_bytes());
        input.extend_from_slice(&opcode.to_be_bytes());
        assert!(
            matches!(
                Request::decode(&mut &input[..]),
                Err(RequestError::Unimplemented { .. })
            ),
            "opcode {opcode}"
        );
    }
}

#[test]
fn multi_rejects_mixing_unknown_ops_and_bad_flags() {
    let header = |op: i32, done: bool| {
        MultiHeader {
            op_type: op,
            done,
            err: -1,
        }
        .to_bytes()
    };
    let get = GetDataRequest {
        path: "/a".into(),
        watch: false,
    }
    .to_bytes();
    let del = DeleteRequest {
        path: "/a".into(),
        version: -1,
    }
    .to_bytes();
    let mixed = [
        header(4, false),
        get,
        header(2, false),
        del,
        header(-1, true),
    ]
    .concat();
    assert!(matches!(
        MultiRequest::decode(&mut &mixed[..]),
        Err(DecodeError::Invalid { .. })
    ));

    let sync = SyncRequest { path: "/a".into() }.to_bytes();
    let unknown = [header(9, false), sync, header(-1, true)].concat();
    assert!(matches!(
        MultiRequest::decode(&mut &unknown[..]),
        Err(DecodeError::Invalid { .. })
    ));

    let create = CreateRequest {
        path: "/a".into(),
        data: None,
        acl: Some(Acl::open_unsafe()),
        flags: 7,
    }
    .to_bytes();
    let bad_flags = [header(1, false), create, header(-1, true)].concat();
    assert!(matches!(
        MultiRequest::decode(&mut &bad_flags[..]),
        Err(DecodeError::Invalid { .. })
    ));

    // Without the terminator the request is incomplete.
    let unterminated = [
        header(2, false),
        DeleteRequest {
            path: "/a".into(),
            version: 0,
        }
        .to_bytes(),
    ]
    .concat();
    assert!(MultiRequest::decode(&mut &unterminated[..])
        .unwrap_err()
        .is_incomplete());
}

#[test]
fn null_paths_are_invalid_not_empty() {
    let mut input = Vec::new();
    input.extend_from_slice(&(-1i32).to_be_bytes());
    input.push(0);
    assert!(matches!(
        GetDataRequest::decode(&mut &input[..]),
        Err(DecodeError::Invalid { .. })
    ));
    let mut input = Vec::new();
    input.extend_from_slice(&0i32.to_be_bytes());
    input.push(0);
    assert_eq!(GetDataRequest::decode(&mut &input[..]).unwrap().path, "");
}
