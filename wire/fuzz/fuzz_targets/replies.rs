//! One server payload, as the client reads it, for every opcode the pending
//! request could have had.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoo_wire::{ConnectResponse, OpCode, Record, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let _ = ConnectResponse::decode(&mut &data[..]);
    for op in OpCode::ALL {
        if let Ok(message) = ServerMessage::decode(&mut &data[..], |_| Some(*op)) {
            let mut again = Vec::new();
            message.encode(&mut again);
            let back = ServerMessage::decode(&mut &again[..], |_| Some(*op));
            assert_eq!(back.ok(), Some(message));
        }
    }
});
