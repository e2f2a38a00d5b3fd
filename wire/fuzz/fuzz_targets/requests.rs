//! One request payload: decoding never panics, and what decodes re-encodes
//! to bytes that decode to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoo_wire::{ConnectRequest, Record, Request};

fuzz_target!(|data: &[u8]| {
    let _ = ConnectRequest::decode(&mut &data[..]);
    if let Ok(request) = Request::decode(&mut &data[..]) {
        let mut again = Vec::new();
        request.encode(&mut again);
        assert_eq!(Request::decode(&mut &again[..]).ok(), Some(request));
    }
});
