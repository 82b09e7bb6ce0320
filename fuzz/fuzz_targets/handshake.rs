//! Everything a client sends on one connection (HTTP upgrade request, then websocket frames)
//! through `accept` and `recv`: refused, accepted or timed out — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stampede_fuzz::drive_handshake(data);
});
