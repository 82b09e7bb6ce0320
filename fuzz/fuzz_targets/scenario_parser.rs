//! Scenario files as users write them: any text must parse to a scenario or to problems with
//! lines — never a panic, an overflow or an allocation that aborts. What parses must also go
//! over the wire: each group, inside the assignment the driver sends, must decode again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stampede_core::scenario::{self, Overrides};
use stampede_fuzz::FuzzCatalog;
use stampede_protocol::{Assignment, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let catalog = FuzzCatalog::default();
    match scenario::from_str(text, Some(Path::new("fuzz.toml")), &Overrides::default(), &catalog) {
        // Rendering the problems computes their lines and fields: it runs on every bad file.
        Err(e) => {
            let _ = e.to_string();
            let _ = e.line();
        }
        Ok(s) => {
            let json = serde_json::to_string(&s).expect("a valid scenario serialises");
            serde_json::from_str::<scenario::Scenario>(&json).expect("a serialised scenario reads back");
            for (i, group) in s.groups.iter().enumerate() {
                let m = Message::Assign(Box::new(Assignment {
                    run_id: "fuzz".into(),
                    group_index: i as u32,
                    scenario_index: 0,
                    group: group.clone(),
                    seed: s.seed.unwrap_or(0),
                    raw: false,
                    image: "stampede:latest".into(),
                    start_rate: s.start_rate,
                }));
                let wire = serde_json::to_string(&m).expect("an assignment serialises");
                stampede_protocol::decode(&wire).expect("the scenario tier decodes its assignment");
            }
        }
    }
});
