//! Jute primitives: the field encodings of ZooKeeper's `BinaryInputArchive`
//! and `BinaryOutputArchive`.
//!
//! Integers are big-endian two's complement. Buffers and strings are an `int`
//! length then the bytes; length -1 is null, which stays distinct from empty.
//! Vectors are an `int` count then the elements; -1 is null, and any other
//! negative count reads as an empty list, as Java's reader does.
//!
//! Reads check the remaining length before touching the buffer, so no input
//! can make them panic, and a length field never causes an allocation larger
//! than the bytes actually present.

use bytes::{Buf, BufMut, Bytes};

use crate::error::{DecodeError, DecodeResult};

/// A record that has a jute encoding.
pub trait Record: Sized {
    /// The size of the smallest encoding, to bound vector allocations.
    const MIN_LEN: usize = 1;

    /// Appends the encoding of `self` to `out`.
    fn encode<B: BufMut>(&self, out: &mut B);

    /// Reads one record from the front of `input`.
    fn decode<B: Buf>(input: &mut B) -> DecodeResult<Self>;

    /// The encoding as a fresh byte vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn need<B: Buf>(input: &B, what: &'static str, needed: usize) -> DecodeResult<()> {
    if input.remaining() < needed {
        return Err(DecodeError::Incomplete {
            what,
            needed,
            remaining: input.remaining(),
        });
    }
    Ok(())
}

/// Reads a jute `int`.
pub fn read_i32<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<i32> {
    need(input, what, 4)?;
    Ok(input.get_i32())
}

/// Reads a jute `long`.
pub fn read_i64<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<i64> {
    need(input, what, 8)?;
    Ok(input.get_i64())
}

/// Reads a jute `boolean`: any non-zero byte is true, as in Java.
pub fn read_bool<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<bool> {
    need(input, what, 1)?;
    Ok(input.get_u8() != 0)
}

/// Reads a length prefix: `None` for -1 (null), an error for other negatives.
fn read_len<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Option<usize>> {
    match read_i32(input, what)? {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::invalid(what, format!("negative length {n}"))),
        n => {
            let n = n as usize;
            need(input, what, n)?;
            Ok(Some(n))
        }
    }
}

/// Reads a jute `buffer`; `None` is the null buffer.
pub fn read_buffer<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Option<Bytes>> {
    Ok(read_len(input, what)?.map(|n| input.copy_to_bytes(n)))
}

/// Reads a jute `buffer` that must not be null.
pub fn read_buffer_non_null<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Bytes> {
    read_buffer(input, what)?.ok_or_else(|| DecodeError::invalid(what, "null buffer"))
}

/// Reads a jute `ustring`; `None` is the null string.
///
/// Bytes that are not UTF-8 are replaced by U+FFFD, as Java's decoder does;
/// such a string then fails path validation like it does in ZooKeeper.
pub fn read_string<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Option<String>> {
    let Some(n) = read_len(input, what)? else {
        return Ok(None);
    };
    let mut bytes = vec![0u8; n];
    input.copy_to_slice(&mut bytes);
    Ok(Some(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// Reads a jute `ustring` that must not be null (paths, names).
pub fn read_string_non_null<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<String> {
    read_string(input, what)?.ok_or_else(|| DecodeError::invalid(what, "null string"))
}

/// Reads a jute `vector<T>`; `None` is the null vector.
///
/// `min_element_len` is the smallest encoding of one element; it bounds the
/// up-front allocation by the bytes that are actually present.
pub fn read_vec<B: Buf, T>(
    input: &mut B,
    what: &'static str,
    min_element_len: usize,
    mut read_one: impl FnMut(&mut B) -> DecodeResult<T>,
) -> DecodeResult<Option<Vec<T>>> {
    let count = read_i32(input, what)?;
    if count == -1 {
        return Ok(None);
    }
    // Java's reader treats any other negative count as an empty list.
    let count = count.max(0) as usize;
    need(input, what, count.saturating_mul(min_element_len))?;
    let mut items = Vec::with_capacity(count.min(input.remaining() / min_element_len.max(1)));
    for _ in 0..count {
        items.push(read_one(input)?);
    }
    Ok(Some(items))
}

/// Writes a jute `boolean`.
pub fn write_bool<B: BufMut>(out: &mut B, value: bool) {
    out.put_u8(u8::from(value));
}

/// Writes a length prefix. Lengths are bounded by the frame size, far below
/// `i32::MAX`; a larger one is a programming error.
fn write_len<B: BufMut>(out: &mut B, len: usize) {
    let len = i32::try_from(len).expect("jute length exceeds i32::MAX");
    out.put_i32(len);
}

/// Writes a jute `buffer`; `None` is written as null (-1).
pub fn write_buffer<B: BufMut>(out: &mut B, value: Option<&[u8]>) {
    match value {
        None => out.put_i32(-1),
        Some(bytes) => {
            write_len(out, bytes.len());
            out.put_slice(bytes);
        }
    }
}

/// Writes a jute `ustring`.
pub fn write_string<B: BufMut>(out: &mut B, value: &str) {
    write_buffer(out, Some(value.as_bytes()));
}

/// Writes a jute `ustring` that may be null.
pub fn write_opt_string<B: BufMut>(out: &mut B, value: Option<&str>) {
    write_buffer(out, value.map(str::as_bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_buffers_differ() {
        let mut out = Vec::new();
        write_buffer(&mut out, None);
        write_buffer(&mut out, Some(b""));
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut input = &out[..];
        assert_eq!(read_buffer(&mut input, "b").unwrap(), None);
        assert_eq!(read_buffer(&mut input, "b").unwrap(), Some(Bytes::new()));
    }

    #[test]
    fn huge_length_is_incomplete_without_allocating() {
        let input = [0x7f, 0xff, 0xff, 0xff, 1, 2];
        let err = read_buffer(&mut &input[..], "data").unwrap_err();
        assert!(err.is_incomplete(), "{err}");
        let err = read_vec(&mut &input[..], "acl", 12, |i| read_i32(i, "x")).unwrap_err();
        assert!(err.is_incomplete(), "{err}");
    }

    #[test]
    fn negative_lengths() {
        let input = (-2i32).to_be_bytes();
        assert!(matches!(
            read_string(&mut &input[..], "path"),
            Err(DecodeError::Invalid { .. })
        ));
        // A vector count below -1 is an empty list, as in Java.
        let v = read_vec(&mut &input[..], "children", 4, |i| read_i32(i, "x")).unwrap();
        assert_eq!(v, Some(vec![]));
    }

    #[test]
    fn any_non_zero_byte_is_true() {
        assert!(read_bool(&mut &[0x02u8][..], "watch").unwrap());
        assert!(!read_bool(&mut &[0x00u8][..], "watch").unwrap());
    }
}
