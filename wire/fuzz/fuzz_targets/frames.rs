//! A byte stream as the server reads it, cut into chunks: the codec must
//! never panic, never yield a frame above the limit, and never buffer more
//! than one frame.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use zoo_wire::{ClientFrame, Request, ServerCodec};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut codec = ServerCodec::new(MAX);
    let mut src = BytesMut::new();
    let mut first = true;
    for chunk in data.chunks(7) {
        src.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut src) {
                Ok(Some(ClientFrame::Frame(mut payload))) => {
                    assert!(payload.len() <= MAX);
                    if !first {
                        let _ = Request::decode(&mut payload);
                    }
                    first = false;
                }
                Ok(Some(ClientFrame::FourLetterWord(..))) => return,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(src.len() <= 4 + MAX + 7);
    }
});
