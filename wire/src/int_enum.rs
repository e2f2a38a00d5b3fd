//! `int_enum!` declares an enum whose variants are the named `int` values of
//! a protocol field, with checked conversion from the raw value.

macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The variant for a raw value, if it names one.
            pub fn from_i32(value: i32) -> Option<Self> {
                match value {
                    $( v if v == $value => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The raw value on the wire.
            pub fn as_i32(self) -> i32 {
                self as i32
            }

            /// Reads the raw `int` and checks that it names a variant.
            pub fn decode<B: bytes::Buf>(
                input: &mut B,
                what: &'static str,
            ) -> $crate::error::DecodeResult<Self> {
                let raw = $crate::jute::read_i32(input, what)?;
                Self::from_i32(raw).ok_or_else(|| {
                    $crate::error::DecodeError::invalid(
                        what,
                        format!("{} is not a known {}", raw, stringify!($name)),
                    )
                })
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v as i32
            }
        }

        impl $crate::field::Field for $name {
            const MIN_LEN: usize = 4;
            fn write_field<B: bytes::BufMut>(&self, out: &mut B) {
                out.put_i32(self.as_i32());
            }
            fn read_field<B: bytes::Buf>(
                input: &mut B,
                what: &'static str,
            ) -> $crate::error::DecodeResult<Self> {
                Self::decode(input, what)
            }
        }

        impl TryFrom<i32> for $name {
            type Error = i32;
            fn try_from(value: i32) -> Result<Self, i32> {
                Self::from_i32(value).ok_or(value)
            }
        }
    };
}

pub(crate) use int_enum;
