//! `Field`: how one field of a record is encoded, chosen by its Rust type,
//! and the `record!` macro that declares a record from its fields in wire
//! order.
//!
//! | Rust type | jute type |
//! |---|---|
//! | `i32`, `i64`, `bool` | int, long, boolean |
//! | `String` / `Option<String>` | ustring, non-null / nullable |
//! | `Bytes` / `Option<Bytes>` | buffer, non-null / nullable |
//! | `Vec<T>` / `Option<Vec<T>>` | vector; `Vec` reads null as empty |
//! | any `Record` | the record inline |

use bytes::{Buf, BufMut, Bytes};

use crate::error::DecodeResult;
use crate::jute::{self, Record};

/// A value that can be one field of a record.
pub trait Field: Sized {
    /// The fewest bytes one encoded value takes, to bound vector allocations.
    const MIN_LEN: usize;
    fn write_field<B: BufMut>(&self, out: &mut B);
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self>;
}

impl Field for i32 {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        out.put_i32(*self);
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_i32(input, what)
    }
}

impl Field for i64 {
    const MIN_LEN: usize = 8;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        out.put_i64(*self);
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_i64(input, what)
    }
}

impl Field for bool {
    const MIN_LEN: usize = 1;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        jute::write_bool(out, *self);
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_bool(input, what)
    }
}

impl Field for String {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        jute::write_string(out, self);
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_string_non_null(input, what)
    }
}

impl Field for Option<String> {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        jute::write_opt_string(out, self.as_deref());
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_string(input, what)
    }
}

impl Field for Bytes {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        jute::write_buffer(out, Some(self));
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_buffer_non_null(input, what)
    }
}

impl Field for Option<Bytes> {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        jute::write_buffer(out, self.as_deref());
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_buffer(input, what)
    }
}

impl<T: Field> Field for Vec<T> {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        write_vec(out, self);
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        Ok(
            jute::read_vec(input, what, T::MIN_LEN, |i| T::read_field(i, what))?
                .unwrap_or_default(),
        )
    }
}

impl<T: Field> Field for Option<Vec<T>> {
    const MIN_LEN: usize = 4;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        match self {
            None => out.put_i32(-1),
            Some(items) => write_vec(out, items),
        }
    }
    fn read_field<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Self> {
        jute::read_vec(input, what, T::MIN_LEN, |i| T::read_field(i, what))
    }
}

fn write_vec<B: BufMut, T: Field>(out: &mut B, items: &[T]) {
    let count = i32::try_from(items.len()).expect("vector longer than i32::MAX");
    out.put_i32(count);
    for item in items {
        item.write_field(out);
    }
}

impl<R: Record> Field for R {
    const MIN_LEN: usize = R::MIN_LEN;
    fn write_field<B: BufMut>(&self, out: &mut B) {
        self.encode(out);
    }
    fn read_field<B: Buf>(input: &mut B, _what: &'static str) -> DecodeResult<Self> {
        R::decode(input)
    }
}

/// Declares a record: a struct whose fields are encoded one after another in
/// declaration order, with nothing between them. `min_len` is the size of the
/// smallest encoding.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident (min_len = $min:expr) {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::jute::Record for $name {
            const MIN_LEN: usize = $min;

            #[allow(unused_variables)]
            fn encode<B: bytes::BufMut>(&self, out: &mut B) {
                $( $crate::field::Field::write_field(&self.$field, out); )*
            }

            #[allow(unused_variables)]
            fn decode<B: bytes::Buf>(input: &mut B) -> $crate::error::DecodeResult<Self> {
                Ok($name {
                    $( $field: $crate::field::Field::read_field(
                        input,
                        concat!(stringify!($name), ".", stringify!($field)),
                    )?, )*
                })
            }
        }
    };
}

pub(crate) use record;
