//! One websocket text message as a peer sends it: `decode` returns a message or `Malformed`,
//! never panics. What decodes can be sent on (tiers forward and echo messages), and a report's
//! histograms go through the driver's own decoding of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stampede_core::stats::Metrics;
use stampede_protocol::Message;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 by the time they reach decode (tungstenite checks it).
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = stampede_protocol::decode(text) {
        let _ = m.kind();
        let wire = serde_json::to_string(&m).expect("a decoded message serialises");
        stampede_protocol::decode(&wire).expect("a re-sent message decodes");
        if let Message::Report(r) = &m {
            // As the driver does: decode, merge into the run's, summarise.
            if let Ok(metrics) = Metrics::from_wire(&r.metrics) {
                let mut run = Metrics::new();
                let _ = run.merge(&metrics);
                let _ = run.summaries();
            }
        }
    }
});
