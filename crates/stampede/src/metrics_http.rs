//! The live metrics endpoint (`--metrics-addr`): Prometheus text, served over plain HTTP/1.1.
//!
//! `stampede run` serves its own run ([`serve_run`]): the driver's [`LiveMetrics`], encoded by
//! `prometheus-client` as a collector at scrape time. `stampede sweep` serves
//! [`SweepMetrics`]: its own progress, plus the text of the run going on (each run serves on
//! 127.0.0.1:0 and writes its address into its folder; the sweep relays it), so one scrape
//! target follows the whole sweep.
//!
//! The server answers `GET /metrics` (and `/`) with the text and anything else with 404; it
//! reads one request per connection and closes it, which is all Prometheus needs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use stampede_tiers::driver::LiveProgress;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("--metrics-addr {addr}: cannot listen: {source}")]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Bind, then answer scrapes with `text()` until the process ends.
async fn serve(
    addr: SocketAddr,
    text: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>> + Send + Sync + 'static,
) -> Result<SocketAddr, BindError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| BindError { addr, source })?;
    let bound = listener.local_addr().map_err(|source| BindError { addr, source })?;
    let text = Arc::new(text);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { continue };
            let text = text.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(1024);
                let mut chunk = [0u8; 1024];
                // The request head only; a scrape has no body.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let response = if head.starts_with("GET ") && (path == "/metrics" || path == "/") {
                    let body = text().await;
                    format!("HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                };
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(bound)
}

/// Serve one run's live metrics; returns the bound address (for `127.0.0.1:0`).
pub async fn serve_run(addr: SocketAddr, progress: Arc<LiveProgress>) -> Result<SocketAddr, BindError> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RunCollector(progress)));
    let registry = Arc::new(registry);
    serve(addr, move || {
        let registry = registry.clone();
        Box::pin(async move { encode(&registry) })
    })
    .await
}

fn encode(registry: &Registry) -> String {
    let mut s = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut s, registry) {
        tracing::error!("encoding metrics: {e}");
    }
    s
}

/// Reads the driver's live numbers at each scrape.
#[derive(Debug)]
struct RunCollector(Arc<LiveProgress>);

impl Collector for RunCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.live.snapshot();
        let labels = |g: &stampede_tiers::live::GroupSnapshot| {
            vec![
                ("run".to_owned(), snap.run_id.clone()),
                ("group".to_owned(), g.name.clone()),
                ("runtime".to_owned(), g.runtime.clone()),
            ]
        };
        type Get = fn(&stampede_tiers::live::GroupSnapshot) -> u64;
        let counters: [(&str, &str, Get); 4] = [
            ("stampede_instances_requested", "Instances (scenarios and actions) whose launch was requested", |g| {
                g.instances_requested
            }),
            ("stampede_instances_ready", "Instances that became ready", |g| g.instances_ready),
            (
                "stampede_instances_failed",
                "Instances that never became ready or died before their work was done",
                |g| g.instances_failed,
            ),
            ("stampede_requests_done", "Requests answered so far (live; by outcome in stampede_requests)", |g| {
                g.requests_done
            }),
        ];
        for (name, help, get) in counters {
            let mut d = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for g in &snap.groups {
                let l = labels(g);
                d.encode_family(&l)?.encode_counter::<Vec<(String, String)>, u64, u64>(&get(g), None)?;
            }
        }
        {
            let mut d = encoder.encode_descriptor(
                "stampede_requests",
                "Requests by outcome, as scenarios report (ok, failed, timed_out, not_sent)",
                None,
                MetricType::Counter,
            )?;
            for g in &snap.groups {
                for (outcome, n) in g.requests {
                    let mut l = labels(g);
                    l.push(("outcome".to_owned(), outcome.to_owned()));
                    d.encode_family(&l)?.encode_counter::<Vec<(String, String)>, u64, u64>(&n, None)?;
                }
            }
        }
        {
            let mut d = encoder.encode_descriptor(
                "stampede_launches_in_flight",
                "Launches requested and not yet ready or failed",
                None,
                MetricType::Gauge,
            )?;
            for g in &snap.groups {
                let l = labels(g);
                d.encode_family(&l)?.encode_gauge(&g.launches_in_flight)?;
            }
        }
        type Hist = fn(&stampede_tiers::live::GroupSnapshot) -> &stampede_tiers::live::HistogramSnapshot;
        let histograms: [(&str, &str, Hist); 2] = [
            (
                "stampede_start_latency",
                "Action start latency (requested to ready), merged as each scenario reports",
                |g| &g.start_latency,
            ),
            (
                "stampede_request_rtt",
                "Request round-trip time seen by the scenario, merged as each scenario reports",
                |g| &g.request_rtt,
            ),
        ];
        for (name, help, get) in histograms {
            let mut d = encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
            for g in &snap.groups {
                let l = labels(g);
                let h = get(g);
                d.encode_family(&l)?.encode_histogram::<Vec<(String, String)>>(h.sum_s, h.count, &h.buckets, None)?;
            }
        }
        let finished = ConstGauge::new(i64::from(snap.finished));
        let l = vec![("run".to_owned(), snap.run_id.clone())];
        finished.encode(
            encoder
                .encode_descriptor(
                    "stampede_run_finished",
                    "1 once the run wrote its results: every number is final",
                    None,
                    MetricType::Gauge,
                )?
                .encode_family(&l)?,
        )?;
        Ok(())
    }
}

/// A sweep's endpoint: its own position, plus whatever the current run serves.
#[derive(Debug, Clone)]
pub struct SweepMetrics {
    runs_total: u64,
    position: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    child: Arc<Mutex<Option<SocketAddr>>>,
}

impl SweepMetrics {
    pub async fn serve(addr: SocketAddr, runs_total: usize) -> Result<SweepMetrics, BindError> {
        let m = SweepMetrics {
            runs_total: runs_total as u64,
            position: Arc::default(),
            done: Arc::default(),
            child: Arc::default(),
        };
        let me = m.clone();
        let bound = serve(addr, move || {
            let me = me.clone();
            Box::pin(async move { me.text().await })
        })
        .await?;
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("sweep: metrics on http://{bound}/metrics\n"));
        Ok(m)
    }

    pub fn set_position(&self, run_index: u64, done: u64) {
        self.position.store(run_index, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
    }

    pub fn set_child(&self, addr: Option<SocketAddr>) {
        *self.child.lock().expect("sweep metrics lock") = addr;
    }

    async fn text(&self) -> String {
        let mut own = format!(
            "# HELP stampede_sweep_runs Runs of the sweep (points × repeats).\n# TYPE stampede_sweep_runs gauge\nstampede_sweep_runs {}\n\
# HELP stampede_sweep_runs_done Runs finished (ok, failed or error).\n# TYPE stampede_sweep_runs_done gauge\nstampede_sweep_runs_done {}\n\
# HELP stampede_sweep_run_index Index of the run going on (0-based, in run order).\n# TYPE stampede_sweep_run_index gauge\nstampede_sweep_run_index {}\n",
            self.runs_total,
            self.done.load(Ordering::Relaxed),
            self.position.load(Ordering::Relaxed)
        );
        let child = *self.child.lock().expect("sweep metrics lock");
        if let Some(addr) = child {
            if let Ok(text) = scrape(addr).await {
                own.push_str(text.trim_end().trim_end_matches("# EOF").trim_end());
                own.push('\n');
            }
        }
        own.push_str("# EOF\n");
        own
    }
}

/// GET /metrics from a run's endpoint (the sweep's relay; a small, local, trusted peer).
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn =
        tokio::time::timeout(std::time::Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await??;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: stampede\r\nConnection: close\r\n\r\n").await?;
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    Ok(text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}
