//! Length-prefixed frames for `tokio_util::codec` (protocol section 1).
//!
//! Every message both ways is `len:int` then `len` bytes. A length that is
//! negative or above the maximum is rejected as soon as its 4 bytes arrive,
//! before anything is allocated for it. The server side also recognises a
//! four-letter word in place of the first frame.

use std::io;

use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

use crate::four_letter::FourLetterWord;
use crate::jute::Record;
use crate::request::Request;
use crate::response::ServerMessage;

/// ZooKeeper's default `jute.maxbuffer`: 1 MiB - 1. A frame of exactly this
/// many payload bytes is accepted.
pub const DEFAULT_MAX_FRAME_LEN: usize = 0xfffff;

/// Why the byte stream cannot go on.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    #[error("frame length {len} is above the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

/// Something that can be the payload of one frame.
pub trait Payload {
    fn encode_payload(&self, out: &mut BytesMut);
}

impl<R: Record> Payload for R {
    fn encode_payload(&self, out: &mut BytesMut) {
        self.encode(out);
    }
}

impl Payload for Request {
    fn encode_payload(&self, out: &mut BytesMut) {
        self.encode(out);
    }
}

impl Payload for ServerMessage {
    fn encode_payload(&self, out: &mut BytesMut) {
        self.encode(out);
    }
}

impl Payload for [u8] {
    fn encode_payload(&self, out: &mut BytesMut) {
        out.put_slice(self);
    }
}

/// Appends one frame: the payload's length, then the payload.
pub fn write_frame<P: Payload + ?Sized>(out: &mut BytesMut, payload: &P) {
    let start = out.len();
    out.put_i32(0);
    payload.encode_payload(out);
    let len = out.len() - start - 4;
    let len = i32::try_from(len).expect("frame longer than i32::MAX");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Frames in both directions, with a maximum payload length.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl FrameCodec {
    pub fn new(max_frame_len: usize) -> FrameCodec {
        FrameCodec { max_frame_len }
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len < 0 {
            return Err(FrameError::NegativeLength(len));
        }
        let len = len as usize;
        if len > self.max_frame_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }
}

impl<P: Payload + ?Sized> Encoder<&P> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &P, dst: &mut BytesMut) -> Result<(), FrameError> {
        write_frame(dst, item);
        Ok(())
    }
}

/// What a client sent, as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// A four-letter word in place of the first frame, with `stmk`'s mask.
    FourLetterWord(FourLetterWord, Option<i64>),
    /// One frame's payload.
    Frame(BytesMut),
}

/// The server's codec: before the first frame, the first 4 bytes may be a
/// known four-letter word; after it, frames only. An unknown word reads as a
/// huge length and fails the size check, as in ZooKeeper.
#[derive(Debug, Clone)]
pub struct ServerCodec {
    frames: FrameCodec,
    first_frame: bool,
}

impl ServerCodec {
    pub fn new(max_frame_len: usize) -> ServerCodec {
        ServerCodec {
            frames: FrameCodec::new(max_frame_len),
            first_frame: true,
        }
    }
}

impl Decoder for ServerCodec {
    type Item = ClientFrame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ClientFrame>, FrameError> {
        if self.first_frame {
            let Some(prefix) = src.get(..4) else {
                return Ok(None);
            };
            let word = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            if let Some(cmd) = FourLetterWord::from_i32(word) {
                let arg_len = cmd.argument_len();
                if src.len() < 4 + arg_len {
                    return Ok(None);
                }
                src.advance(4);
                let arg = (arg_len == 8).then(|| src.get_i64());
                return Ok(Some(ClientFrame::FourLetterWord(cmd, arg)));
            }
        }
        let frame = self.frames.decode(src)?;
        if frame.is_some() {
            self.first_frame = false;
        }
        Ok(frame.map(ClientFrame::Frame))
    }
}

impl<P: Payload + ?Sized> Encoder<&P> for ServerCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &P, dst: &mut BytesMut) -> Result<(), FrameError> {
        write_frame(dst, item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_negative_lengths_fail_on_the_prefix_alone() {
        let mut codec = FrameCodec::new(16);
        let mut src = BytesMut::from(&[0, 0, 0, 17][..]);
        assert!(matches!(
            codec.decode(&mut src),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
        let mut src = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert!(matches!(
            codec.decode(&mut src),
            Err(FrameError::NegativeLength(-2))
        ));
    }

    #[test]
    fn exactly_the_maximum_is_accepted() {
        let mut codec = FrameCodec::default();
        let mut src = BytesMut::new();
        write_frame(&mut src, &vec![7u8; DEFAULT_MAX_FRAME_LEN][..]);
        let frame = codec.decode(&mut src).unwrap().unwrap();
        assert_eq!(frame.len(), DEFAULT_MAX_FRAME_LEN);
        assert!(src.is_empty());
    }

    #[test]
    fn partial_frames_wait() {
        let mut codec = FrameCodec::default();
        let mut src = BytesMut::from(&[0, 0, 0, 3, 1, 2][..]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        src.put_u8(3);
        assert_eq!(&codec.decode(&mut src).unwrap().unwrap()[..], &[1, 2, 3]);
    }

    #[test]
    fn four_letter_words_only_before_the_first_frame() {
        let mut codec = ServerCodec::new(DEFAULT_MAX_FRAME_LEN);
        let mut src = BytesMut::from(&b"ruok\n"[..]);
        assert_eq!(
            codec.decode(&mut src).unwrap(),
            Some(ClientFrame::FourLetterWord(FourLetterWord::Ruok, None))
        );

        let mut codec = ServerCodec::new(DEFAULT_MAX_FRAME_LEN);
        let mut src = BytesMut::from(&b"stmk"[..]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        src.put_i64(0x10);
        assert_eq!(
            codec.decode(&mut src).unwrap(),
            Some(ClientFrame::FourLetterWord(
                FourLetterWord::Stmk,
                Some(0x10)
            ))
        );

        // An unknown word is a huge length.
        let mut codec = ServerCodec::new(DEFAULT_MAX_FRAME_LEN);
        let mut src = BytesMut::from(&b"oops"[..]);
        assert!(matches!(
            codec.decode(&mut src),
            Err(FrameError::TooLarge { .. })
        ));

        // After a frame, the same bytes are a length.
        let mut codec = ServerCodec::new(DEFAULT_MAX_FRAME_LEN);
        let mut src = BytesMut::from(&[0, 0, 0, 1, 9][..]);
        assert!(matches!(
            codec.decode(&mut src).unwrap(),
            Some(ClientFrame::Frame(_))
        ));
        src.put_slice(b"ruok");
        assert!(matches!(
            codec.decode(&mut src),
            Err(FrameError::TooLarge { .. })
        ));
    }
}
