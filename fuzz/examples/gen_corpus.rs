//! Writes the seed corpora of `protocol_decode` and `handshake` (run from `fuzz/`:
//! `cargo run --example gen_corpus`). Seeds are real messages, serialised by the protocol
//! crate itself so they follow its current schema, plus invalid variants of each layer.
//! The `scenario_parser` seeds are the repository's own scenario files (see scripts/fuzz-smoke).

use std::path::Path;

use stampede_core::measure::{InstanceRecord, NativeStateRecord, Outcome, RequestOutcome, RequestRecord, Role};
use stampede_core::scenario::{self, Overrides, StartRate, WorkKind};
use stampede_core::stats::Metrics;
use stampede_fuzz::{client_frame, upgrade_request, FuzzCatalog, TOKEN};
use stampede_protocol::{Assignment, Identity, Message, Progress, ScenarioReport, PROTOCOL_VERSION};

fn messages() -> Vec<(&'static str, Message)> {
    let identity = Identity {
        instance_id: "r1-g0-s0-a3".into(),
        role: Role::Action,
        hostname: "bench-1".into(),
        boot_id: "6f1c1a2e-0b7d-4c59-9a1e-2f3b4c5d6e7f".into(),
        pid: 4242,
        process_entry_unix_us: 1_764_000_000_000_000,
        clock_anchor_unix_us: 1_764_000_000_000_100,
        served_before: false,
    };
    let text = std::fs::read_to_string("../scenarios/pause-resume.toml").expect("scenarios/pause-resume.toml");
    let s =
        scenario::from_str(&text, Some(Path::new("pause-resume.toml")), &Overrides::default(), &FuzzCatalog::default())
            .expect("pause-resume.toml is valid");
    let mut metrics = Metrics::new();
    for v in [120, 340, 90_000] {
        metrics.record("request_rtt", v);
    }
    metrics.record("ready", 15_000);
    let report = ScenarioReport {
        metrics: metrics.to_wire(),
        instances: vec![InstanceRecord {
            instance_id: "r1-g0-s0-a0".into(),
            role: Some(Role::Action),
            action: Some(0),
            outcome: Outcome::Ready,
            pid: Some(77),
            ..InstanceRecord::default()
        }],
        requests: vec![RequestRecord {
            instance_id: "r1-g0-s0-a0".into(),
            group: 0,
            scenario: 0,
            action: 0,
            request_id: 1,
            scheduled_us: 10,
            sent_us: 12,
            received_us: Some(400),
            request_rtt_us: Some(388),
            service_time_us: Some(300),
            overhead_us: Some(88),
            cold: true,
            outcome: RequestOutcome::Ok,
            warmup: false,
            error: None,
        }],
        native_states: vec![NativeStateRecord {
            instance_id: "r1-g0-s0-a0".into(),
            state: "running".into(),
            time_us: 5,
            source: "events".into(),
        }],
        work_started_us: Some(1),
        work_finished_us: Some(9000),
        ..ScenarioReport::default()
    };
    vec![
        ("hello", Message::Hello { version: PROTOCOL_VERSION, identity }),
        ("ready", Message::Ready { self_ready_unix_us: 1_764_000_000_500_000 }),
        ("response", Message::Response { id: 7, service_time_us: 10_000, cold: true, payload: "abcd".into() }),
        (
            "progress",
            Message::Progress(Progress {
                actions_launched: 4,
                actions_ready: 3,
                actions_failed: 1,
                requests_done: 10,
                requests_planned: 40,
                requests_ok: 9,
            }),
        ),
        ("held", Message::Held),
        ("work_done", Message::WorkDone),
        ("report", Message::Report(Box::new(report))),
        ("error", Message::Error { message: "cannot launch action 3: no such image".into() }),
        (
            "assign",
            Message::Assign(Box::new(Assignment {
                run_id: "r1".into(),
                group_index: 0,
                scenario_index: 1,
                group: s.groups[0].clone(),
                seed: 42,
                raw: true,
                image: "stampede:latest".into(),
                start_rate: Some(StartRate { qps: 2.5, burst: 3 }),
            })),
        ),
        (
            "request",
            Message::Request {
                id: 8,
                work: WorkKind::Spin,
                duration_us: 5000,
                payload: "wxyz".into(),
                response_size: 8,
            },
        ),
        ("go", Message::Go),
        ("release", Message::Release),
        ("stop", Message::Stop),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()));
}

fn main() {
    let msgs = messages();
    let decode_dir = Path::new("corpus/protocol_decode");
    let hs_dir = Path::new("corpus/handshake");
    std::fs::create_dir_all(decode_dir).unwrap();
    std::fs::create_dir_all(hs_dir).unwrap();

    let json = |m: &Message| serde_json::to_string(m).unwrap();
    for (name, m) in &msgs {
        let j = json(m);
        assert_eq!(&stampede_protocol::decode(&j).expect("seed decodes"), m);
        write(decode_dir, &format!("{name}.json"), j.as_bytes());
    }
    // Near misses: each should be refused as Malformed.
    let hello = json(&msgs[0].1);
    write(decode_dir, "bad-unknown-type.json", br#"{"type":"launch","id":1}"#);
    write(decode_dir, "bad-missing-field.json", br#"{"type":"response","id":7,"cold":true}"#);
    write(decode_dir, "bad-wrong-type.json", br#"{"type":"ready","self_ready_unix_us":"soon"}"#);
    write(
        decode_dir,
        "bad-overflow.json",
        br#"{"type":"request","id":18446744073709551616,"work":"spin","duration_us":1,"payload":"","response_size":1}"#,
    );
    write(decode_dir, "bad-truncated.json", &hello.as_bytes()[..hello.len() / 2]);
    write(decode_dir, "bad-nested.json", "[".repeat(200).as_bytes());

    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let text = |m: &Message| client_frame(1, true, json(m).as_bytes(), mask);
    let good = upgrade_request(Some(TOKEN), "");
    let seed = |parts: &[&[u8]]| parts.concat();
    let hello_f = text(&msgs[0].1);
    let ready_f = text(&msgs[1].1);
    let progress_f = text(&msgs[3].1);
    let report_f = text(&msgs[6].1);
    let close_f = client_frame(8, true, &[0x03, 0xe8, b'b', b'y', b'e'], mask);
    let (first, rest) = hello.as_bytes().split_at(20);
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("hello", seed(&[&good, &hello_f])),
        ("hello-ready-progress-close", seed(&[&good, &hello_f, &ready_f, &progress_f, &close_f])),
        ("hello-report", seed(&[&good, &hello_f, &report_f])),
        ("hello-fragmented", seed(&[&good, &client_frame(1, false, first, mask), &client_frame(0, true, rest, mask)])),
        (
            "ping-hello-pong",
            seed(&[&good, &client_frame(9, true, b"hi", mask), &hello_f, &client_frame(10, true, b"", mask)]),
        ),
        (
            "extra-headers",
            seed(&[&upgrade_request(Some(TOKEN), "Origin: http://x\r\nSec-WebSocket-Protocol: chat\r\n"), &hello_f]),
        ),
        ("bad-token", seed(&[&upgrade_request(Some("wrong-token"), ""), &hello_f])),
        ("no-token", seed(&[&upgrade_request(None, ""), &hello_f])),
        (
            "token-twice",
            seed(&[
                &upgrade_request(Some(TOKEN), &format!("{}: other\r\n", stampede_protocol::TOKEN_HEADER)),
                &hello_f,
            ]),
        ),
        ("not-upgrade", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("half-request", good[..good.len() / 2].to_vec()),
        ("binary-frame", seed(&[&good, &client_frame(2, true, hello.as_bytes(), mask)])),
        ("bad-utf8", seed(&[&good, &client_frame(1, true, &[0xff, 0xfe, b'{'], mask)])),
        ("bad-json", seed(&[&good, &client_frame(1, true, b"{\"type\":\"hello\"", mask)])),
        ("unmasked", seed(&[&good, &[0x81, 0x02, b'{', b'}']])),
        ("reserved-bits", seed(&[&good, &[0xf1, 0x82, 0, 0, 0, 0, b'{', b'}']])),
        ("over-cap-length", seed(&[&good, &[0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0], &mask, b"{}"])),
        ("huge-length", seed(&[&good, &[0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &mask])),
        ("close-bad-code", seed(&[&good, &hello_f, &client_frame(8, true, &[0x00, 0x01], mask)])),
        ("continuation-first", seed(&[&good, &client_frame(0, true, hello.as_bytes(), mask)])),
        ("truncated-frame", seed(&[&good, &hello_f[..hello_f.len() - 3]])),
    ];
    for (name, bytes) in &seeds {
        write(hs_dir, name, bytes);
        println!("{name}: {:?}", stampede_fuzz::drive_handshake(bytes));
    }
    println!("wrote {} decoder seeds and {} handshake seeds", msgs.len() + 6, seeds.len());
}
