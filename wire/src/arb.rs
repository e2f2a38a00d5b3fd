//! proptest strategies for the field types that have no `Arbitrary` of
//! their own.

use bytes::Bytes;
use proptest::prelude::*;

/// Any byte string up to 64 bytes.
pub fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

/// Null, or any byte string up to 64 bytes.
pub fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(bytes())
}
