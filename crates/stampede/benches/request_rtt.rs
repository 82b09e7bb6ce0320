//! Request round trip through stampede against a raw TCP ping-pong between two processes, at
//! the same concurrency, in the same run.
//!
//!     cargo bench -p stampede --bench request_rtt              # 4 connections × 2,000 round trips
//!     STAMPEDE_BENCH_C=16 STAMPEDE_BENCH_N=1000 cargo bench -p stampede --bench request_rtt
//!
//! stampede's side is a real run on the process runtime (`-S 1 -A C -N N`, work `sleep:0ms`,
//! 64-byte payloads): its `request_rtt` p50 is the whole request path — scenario → websocket →
//! action → websocket → scenario, JSON both ways. The baseline is what no load generator can
//! beat: this bench re-executed as a child process that echoes 64-byte messages over C plain TCP
//! connections (TCP_NODELAY), pinged and ponged N times each. The machine is shared and noisy:
//! the ratio, measured back to back, is the figure to read.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "STAMPEDE_BENCH_ECHO_PORT";
const MSG: usize = 64;

fn main() {
    if let Ok(port) = std::env::var(CHILD_ENV) {
        return echo_server(port.parse().expect("port"));
    }
    let c: usize = std::env::var("STAMPEDE_BENCH_C").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let n: usize = std::env::var("STAMPEDE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let raw = raw_ping_pong(c, n);
    let ours = through_stampede(c, n);
    println!("request_rtt: {c} connections × {n} round trips, {MSG}-byte payloads");
    println!("  raw TCP ping-pong (two processes)   p50 {:>7} µs", raw);
    println!("  stampede request_rtt (sleep:0ms)    p50 {:>7} µs", ours);
    println!("  ratio raw/stampede                  {:>7.2}   (1.0 = as fast as raw TCP)", raw as f64 / ours as f64);
}

/// The child: accept connections on 127.0.0.1:`port` and echo every message, one thread each.
fn echo_server(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    for stream in listener.incoming() {
        let mut s = stream.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        std::thread::spawn(move || {
            let mut buf = [0u8; MSG];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        });
    }
}

/// p50 of `n` round trips on each of `c` connections to an echoing child process, in µs.
fn raw_ping_pong(c: usize, n: usize) -> u64 {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(std::env::current_exe().unwrap()).env(CHILD_ENV, port.to_string()).spawn().expect("echo child");
    let deadline = Instant::now() + Duration::from_secs(10);
    let connect = || loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("echo child never listened: {e}"),
        }
    };
    let workers: Vec<_> = (0..c)
        .map(|_| {
            let mut s = connect();
            s.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut rtts = Vec::with_capacity(n);
                let (out, mut back) = ([7u8; MSG], [0u8; MSG]);
                for _ in 0..n {
                    let t0 = Instant::now();
                    s.write_all(&out).unwrap();
                    s.read_exact(&mut back).unwrap();
                    rtts.push(t0.elapsed().as_micros() as u64);
                }
                rtts
            })
        })
        .collect();
    let mut all: Vec<u64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    all.sort_unstable();
    all[all.len() / 2]
}

/// stampede's request_rtt p50 for the same shape, from a real run's results.json, in µs.
fn through_stampede(c: usize, n: usize) -> u64 {
    let bin = std::env::var("STAMPEDE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_stampede").to_owned());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let status = Command::new(bin)
        .args(["run", "-S", "1", "-A", &c.to_string(), "-N", &n.to_string(), "--work", "sleep:0ms", "--payload", "64", "-q", "--out"])
        .arg(&out)
        .status()
        .expect("run stampede");
    assert!(status.success(), "stampede run failed: {status}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    r["metrics"]["request_rtt"]["p50_us"].as_u64().expect("request_rtt p50")
}
