//! What the fuzz targets share: the runtime catalog the scenario parser sees, and the pieces
//! of a client's side of the websocket handshake (upgrade request, masked frames) that the
//! corpus generator (`examples/gen_corpus.rs`) writes seeds with.
//!
//! - [`FuzzCatalog`]: the real `process` runtime plus stand-ins for the container runtimes.
//! - [`upgrade_request`] / [`client_frame`]: bytes a real client would send.
//! - [`drive_handshake`]: one connection's worth of client bytes through `accept` and `recv`.

use std::time::Duration;

use serde_json::json;
use stampede_core::scenario::{Capabilities, OptionsTable, RuntimeCatalog, RuntimeInfo};
use stampede_runtime::process::ProcessProvider;

/// The token the handshake target's server expects; seeds that should get through carry it.
pub const TOKEN: &str = "fuzz-token";

/// The message cap the handshake target's server sets: small, so that the fuzzer reaches the
/// too-large paths with inputs of a few KiB.
pub const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// The runtimes the parser target knows. The real docker, swarm and kubernetes crates would pull
/// bollard and kube into every instrumented build (minutes of compile per CI smoke run), so
/// their names are served by [`StandIn`], which reads its table with the same `OptionsTable`
/// calls those crates make: the parsing code under test (core's) is the same.
pub struct FuzzCatalog {
    process: ProcessProvider,
    docker: StandIn,
    swarm: StandIn,
    kubernetes: StandIn,
}

impl Default for FuzzCatalog {
    fn default() -> Self {
        Self {
            process: ProcessProvider::new("/nonexistent/stampede".into()),
            docker: StandIn("docker"),
            swarm: StandIn("swarm"),
            kubernetes: StandIn("kubernetes"),
        }
    }
}

impl RuntimeCatalog for FuzzCatalog {
    fn find(&self, name: &str) -> Option<&dyn RuntimeInfo> {
        match name {
            "process" => Some(&self.process),
            "docker" => Some(&self.docker),
            "swarm" => Some(&self.swarm),
            "kubernetes" => Some(&self.kubernetes),
            _ => None,
        }
    }
    fn names(&self) -> Vec<&'static str> {
        vec!["process", "docker", "swarm", "kubernetes"]
    }
}

/// A container runtime as the parser sees it: every capability, and an option table read with
/// each kind of `OptionsTable` reader (the keys the real runtime crates use).
pub struct StandIn(&'static str);

impl RuntimeInfo for StandIn {
    fn name(&self) -> &'static str {
        self.0
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause_resume: true,
            kill: true,
            image: true,
            image_filler: true,
            default_start_concurrency: 2,
            run_start_concurrency: 8,
            native_states: &["created", "running"],
            threads_per_instance: 4,
            memory_per_instance_kib: 8192,
        }
    }
    fn read_options(&self, t: &mut OptionsTable<'_>) -> serde_json::Value {
        t.allow(&[
            "network",
            "mapping",
            "restart_condition",
            "update_parallelism",
            "placement",
            "namespace",
            "host_network",
            "node_selector",
            "tolerations",
            "qps",
            "burst",
            "idle",
        ]);
        let network = t.keyword("network", &[("host", "host"), ("bridge", "bridge"), ("overlay", "overlay")]);
        let parallelism = t.integer("update_parallelism", 0, i64::MAX);
        let burst = t.integer("burst", 1, i64::from(u32::MAX));
        let qps = t.number_above("qps", 0.0);
        let namespace = t.string("namespace");
        let host_network = t.boolean("host_network");
        let idle = t.duration("idle").map(|d| d.as_micros() as u64);
        let placement = t.string_list("placement", "[\"node.role==manager\"]");
        let tolerations = t.string_list("tolerations", "[\"dedicated=bench:NoSchedule\"]");
        let selector = t.string_map("node_selector");
        if t.has("mapping") && t.has("host_network") {
            t.problem("mapping", "not with host_network");
        }
        json!({
            "network": network, "update_parallelism": parallelism, "burst": burst, "qps": qps,
            "namespace": namespace, "host_network": host_network, "idle_us": idle,
            "placement": placement, "tolerations": tolerations, "node_selector": selector,
        })
    }
    fn default_options(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// The HTTP upgrade request a child sends, with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(token: Option<&str>, extra: &str) -> Vec<u8> {
    let mut r = String::from(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:4000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    if let Some(t) = token {
        r.push_str(&format!("{}: {t}\r\n", stampede_protocol::TOKEN_HEADER));
    }
    r.push_str(extra);
    r.push_str("\r\n");
    r.into_bytes()
}

/// One client frame (clients must mask): `opcode` 1 text, 2 binary, 8 close, 9 ping, 0
/// continuation; `fin` false starts a fragmented message.
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | (opcode & 0x0f)];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// What one connection came to; the corpus generator checks its seeds with it.
#[derive(Debug, Default)]
pub struct Served {
    /// The `accept` error, or `None` when the handshake succeeded.
    pub refused: Option<String>,
    /// Kinds of the messages received, in order.
    pub messages: Vec<&'static str>,
    /// The error that ended `recv`, or "timeout".
    pub end: String,
}

/// Feed `input` as everything a client sends on one connection, then end it: `accept` must
/// refuse or accept it, and `recv` must return messages and then an error — never panic.
/// Runs on a current-thread runtime with a paused clock, so a stall ends at once, as a timeout.
pub fn drive_handshake(input: &[u8]) -> Served {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("current-thread runtime");
    rt.block_on(async {
        let (client, server) = tokio::io::duplex(64 << 10);
        let (mut client_rx, mut client_tx) = tokio::io::split(client);
        // A client sends frames only once the server has answered its upgrade request
        // (tungstenite refuses bytes after the request in the same read as junk): the input is
        // cut after the request's blank line, and the rest follows the answer's.
        let cut = input.windows(4).position(|w| w == b"\r\n\r\n").map_or(input.len(), |i| i + 4);
        let (head, frames) = (input[..cut].to_vec(), input[cut..].to_vec());
        let (answered_tx, answered_rx) = tokio::sync::oneshot::channel::<()>();
        // The client writes and reads on its own tasks: a large input or a large answer must
        // not block the server on a full in-memory pipe.
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if client_tx.write_all(&head).await.is_ok() && !frames.is_empty() {
                // Sent anyway if the server ends the connection without an answer.
                let _ = answered_rx.await;
                let _ = client_tx.write_all(&frames).await;
            }
            let _ = client_tx.shutdown().await;
            client_tx
        });
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            let mut answered = Some(answered_tx);
            while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
                if answered.is_some() {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = answered.take().map(|a| a.send(()));
                    }
                }
            }
        });
        let mut served = Served { end: "timeout".into(), ..Served::default() };
        // A timeout is allowed (the peer may leave a frame half sent); a panic is not.
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let mut conn = match stampede_protocol::accept(server, "fuzz-peer", TOKEN, MAX_MESSAGE_BYTES).await {
                Ok(c) => c,
                Err(e) => {
                    served.refused = Some(e.to_string());
                    served.end = "refused".into();
                    return;
                }
            };
            // Each message is echoed back, as a tier answers: the send path must cope with
            // whatever was decoded.
            loop {
                match conn.recv().await {
                    Ok(m) => {
                        served.messages.push(m.kind());
                        let _ = conn.send(&m).await;
                    }
                    Err(e) => {
                        served.end = e.to_string();
                        break;
                    }
                }
            }
            conn.close("fuzz done").await;
        })
        .await;
        let _ = writer.await;
        reader.abort();
        served
    })
}
