//! Metrics as HdrHistograms: recorded where the event happens, merged up the tiers.
//!
//! A [`Metrics`] is a set of named histograms (µs). Tiers ship them to their parent in the
//! compact HdrHistogram V2+DEFLATE encoding ([`Metrics::to_wire`]), the parent merges
//! ([`Metrics::merge`]), and only the driver turns them into [`Summary`] objects. No tier ever
//! keeps a list of every sample for this.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Highest trackable value: one hour in µs. Larger values are clamped (and still counted).
const MAX_US: u64 = 3_600_000_000;
const SIGFIG: u8 = 3;

/// Largest decoded payload (the counts) of one histogram read by [`Metrics::from_wire`]. Ours,
/// at most `SIGFIG` digits, have a few tens of thousands of counts of up to 9 bytes each: well
/// under this. hdrhistogram allocates whatever a header claims before reading a byte of it, so a
/// header of a few bytes could otherwise ask for gigabytes (found by the `protocol_decode` fuzz
/// target: a report claiming a 2.9 GB payload).
const MAX_WIRE_PAYLOAD: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("metric `{name}`: not valid base64: {source}")]
    DecodeBase64 { name: String, source: base64::DecodeError },
    #[error("metric `{name}`: not a valid HdrHistogram: {reason}")]
    DecodeHistogram { name: String, reason: String },
    #[error("metric `{name}`: cannot merge: {reason}")]
    Merge { name: String, reason: String },
}

fn new_histogram() -> Histogram<u64> {
    // auto-resize keeps recording cheap for small values yet never refuses a large one.
    let mut h = Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("static histogram bounds are valid");
    h.auto(true);
    h
}

/// One [`Metrics`] that many tasks record into. A scenario's action slots share one, so a
/// scenario holding A actions alive carries one set of histograms — each ~184 KiB, a dozen and
/// more names — rather than A sets: per-slot sets were ~1 MiB per held action (250 MiB in a
/// scenario of 250). Each record takes the lock for a few tens of nanoseconds, never across an
/// await (a `std` guard is not `Send`, so the compiler refuses that in a spawned task).
#[derive(Clone, Default)]
pub struct SharedMetrics(std::sync::Arc<std::sync::Mutex<Metrics>>);

impl SharedMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`Metrics::record`], under the lock.
    pub fn record(&self, name: &str, value_us: i64) {
        self.lock().record(name, value_us);
    }

    /// The set itself, for several records at once or for reading. A panic elsewhere while
    /// recording leaves whole histograms behind, so a poisoned lock is still good data.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Metrics> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Named histograms of µs values.
#[derive(Clone, Default)]
pub struct Metrics {
    histograms: BTreeMap<String, Histogram<u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.histograms.iter().map(|(k, h)| (k, h.len()))).finish()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one value in µs. Negative values are recorded as 0 so they stay counted: a phase
    /// whose end was observed before its start (a child that connected before the parent read
    /// its clock after spawn, or clock skew between observers) took no measurable time.
    pub fn record(&mut self, name: &str, value_us: i64) {
        let v = u64::try_from(value_us).unwrap_or(0).min(MAX_US);
        let h = self.histograms.entry(name.to_owned()).or_insert_with(new_histogram);
        // With auto-resize and a clamped value, recording cannot fail.
        let _ = h.record(v);
    }

    pub fn get(&self, name: &str) -> Option<&Histogram<u64>> {
        self.histograms.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.histograms.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.histograms.is_empty()
    }

    pub fn merge(&mut self, other: &Metrics) -> Result<(), StatsError> {
        for (name, h) in &other.histograms {
            let mine = self.histograms.entry(name.clone()).or_insert_with(new_histogram);
            mine.add(h).map_err(|e| StatsError::Merge { name: name.clone(), reason: format!("{e:?}") })?;
        }
        Ok(())
    }

    pub fn summaries(&self) -> BTreeMap<String, Summary> {
        self.histograms.iter().map(|(k, h)| (k.clone(), Summary::of(h))).collect()
    }

    /// Encode for the wire or for `results.json`: name → base64(V2+DEFLATE histogram).
    pub fn to_wire(&self) -> BTreeMap<String, String> {
        let mut ser = V2DeflateSerializer::new();
        self.histograms
            .iter()
            .map(|(name, h)| {
                let mut buf = Vec::new();
                ser.serialize(h, &mut buf).expect("serialising into a Vec cannot fail");
                (name.clone(), base64::engine::general_purpose::STANDARD.encode(buf))
            })
            .collect()
    }

    pub fn from_wire(wire: &BTreeMap<String, String>) -> Result<Self, StatsError> {
        // Each name becomes a histogram of ~184 KiB from ~50 bytes on the wire: a report names
        // a few dozen (metrics plus the runtime's native states), never thousands.
        if wire.len() > MAX_WIRE_HISTOGRAMS {
            return Err(StatsError::DecodeHistogram {
                name: format!("({} histograms)", wire.len()),
                reason: format!("more than {MAX_WIRE_HISTOGRAMS} histograms in one report"),
            });
        }
        let mut de = Deserializer::new();
        let mut histograms = BTreeMap::new();
        for (name, b64) in wire {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|source| StatsError::DecodeBase64 { name: name.clone(), source })?;
            check_wire_header(&bytes).map_err(|reason| StatsError::DecodeHistogram { name: name.clone(), reason })?;
            let h: Histogram<u64> = de
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| StatsError::DecodeHistogram { name: name.clone(), reason: format!("{e:?}") })?;
            // Without auto-resize for the merge: a value beyond what any tier records (they
            // clamp at MAX_US) would grow this histogram to the range the sender chose.
            let mut merged = new_histogram();
            merged.auto(false);
            merged.add(&h).map_err(|e| StatsError::Merge { name: name.clone(), reason: format!("{e:?}") })?;
            merged.auto(true);
            histograms.insert(name.clone(), merged);
        }
        Ok(Self { histograms })
    }
}

/// The most histograms one report may carry (see [`Metrics::from_wire`]).
pub const MAX_WIRE_HISTOGRAMS: usize = 1024;

/// Refuses an encoded histogram whose V2 header asks for more than ours ever need (payload
/// length, significant digits), before hdrhistogram allocates what it asks for. What this does
/// not recognise (another cookie, a short header) is left to the deserializer, which refuses
/// it without allocating.
fn check_wire_header(bytes: &[u8]) -> Result<(), String> {
    use std::io::Read as _;
    // The V2 cookies as hdrhistogram writes them (the format's base cookies with 0x10 set).
    const V2_COOKIE: u32 = 0x1c84_9313;
    const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
    let be_u32 = |b: &[u8], at: usize| b.get(at..at + 4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    // The V2 header: cookie, payload length, normalising offset, significant digits, then the
    // bounds and the ratio; only the first four fields matter here.
    let mut header = Vec::with_capacity(16);
    match be_u32(bytes, 0) {
        Some(V2_COOKIE) => header.extend_from_slice(&bytes[..bytes.len().min(16)]),
        Some(V2_COMPRESSED_COOKIE) => {
            // The compressed form wraps a whole V2 encoding: inflate just its header.
            let compressed_len = be_u32(bytes, 4).unwrap_or(0);
            let compressed = bytes.get(8..).unwrap_or_default().take(u64::from(compressed_len));
            let _ = flate2::read::ZlibDecoder::new(compressed).take(16).read_to_end(&mut header);
        }
        _ => return Ok(()),
    }
    if let Some(len) = be_u32(&header, 4).filter(|len| *len > MAX_WIRE_PAYLOAD) {
        return Err(format!("its header claims a payload of {len} bytes; at most {MAX_WIRE_PAYLOAD} are accepted"));
    }
    if let Some(digits) = be_u32(&header, 12).filter(|d| *d > u32::from(SIGFIG)) {
        return Err(format!("its header asks for {digits} significant digits; at most {SIGFIG} are accepted"));
    }
    Ok(())
}

/// What results.json, the CSVs and the report say about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Summary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub stdev_us: u64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean().round() as u64,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            stdev_us: h.stdev().round() as u64,
        }
    }
}

/// Points of the CDF of a histogram, (µs, cumulative fraction), for plots.
pub fn cdf_points(h: &Histogram<u64>) -> Vec<(u64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let total = h.len() as f64;
    let mut acc = 0u64;
    h.iter_recorded()
        .map(|v| {
            acc += v.count_since_last_iteration();
            (h.highest_equivalent(v.value_iterated_to()), acc as f64 / total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut m = Metrics::new();
        for v in 1..=1000 {
            m.record("x", v);
        }
        let s = m.summaries()["x"];
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_us, 1);
        assert_eq!(s.max_us, 1000);
        assert!((499..=501).contains(&s.p50_us), "{s:?}");
        assert!((989..=991).contains(&s.p99_us), "{s:?}");
    }

    #[test]
    fn merge_across_tiers_through_the_wire_equals_recording_in_one_place() {
        // Two "scenarios" record halves; the "driver" merges their wire forms.
        let (mut a, mut b, mut all) = (Metrics::new(), Metrics::new(), Metrics::new());
        for v in 0..5000 {
            let x = 100 + (v * 7919) % 20_000;
            if v % 2 == 0 {
                a.record("request_rtt", x)
            } else {
                b.record("request_rtt", x)
            }
            all.record("request_rtt", x);
        }
        b.record("start_latency", 42_000);
        all.record("start_latency", 42_000);

        let mut driver = Metrics::new();
        driver.merge(&Metrics::from_wire(&a.to_wire()).unwrap()).unwrap();
        driver.merge(&Metrics::from_wire(&b.to_wire()).unwrap()).unwrap();
        assert_eq!(driver.summaries(), all.summaries());
        assert_eq!(driver.summaries()["start_latency"].count, 1);
    }

    #[test]
    fn garbage_on_the_wire_is_an_error_not_a_panic() {
        let mut w = BTreeMap::new();
        w.insert("x".to_owned(), "not base64!".to_owned());
        assert!(matches!(Metrics::from_wire(&w), Err(StatsError::DecodeBase64 { .. })));
        w.insert("x".to_owned(), base64::engine::general_purpose::STANDARD.encode(b"hello"));
        assert!(matches!(Metrics::from_wire(&w), Err(StatsError::DecodeHistogram { .. })));
    }

    fn wire_of(h: &Histogram<u64>) -> BTreeMap<String, String> {
        let mut buf = Vec::new();
        V2DeflateSerializer::new().serialize(h, &mut buf).unwrap();
        BTreeMap::from([("x".to_owned(), base64::engine::general_purpose::STANDARD.encode(buf))])
    }

    #[test]
    fn histogram_headers_that_claim_too_much_are_refused_before_allocating() {
        // Uncompressed V2: cookie, then a payload length of ~2.9 GB (the fuzzer's find).
        let mut raw = vec![0x1c, 0x84, 0x93, 0x13, 0xb0, 0x00, 0x00, 0x09];
        raw.extend_from_slice(&[0; 32]);
        let w = BTreeMap::from([("x".to_owned(), base64::engine::general_purpose::STANDARD.encode(&raw))]);
        let e = Metrics::from_wire(&w).unwrap_err();
        assert!(e.to_string().contains("claims a payload of 2952790025 bytes"), "{e}");

        // Compressed, with more significant digits than any tier uses (a 100 MB counts array).
        let fine = Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 5).unwrap();
        let e = Metrics::from_wire(&wire_of(&fine)).unwrap_err();
        assert!(e.to_string().contains("5 significant digits"), "{e}");

        // A value beyond what any tier records must not grow the merged histogram.
        let mut far = Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, SIGFIG).unwrap();
        far.record(1 << 60).unwrap();
        assert!(matches!(Metrics::from_wire(&wire_of(&far)), Err(StatsError::Merge { .. })));

        // What the tiers send still reads back.
        let mut m = Metrics::new();
        m.record("x", i64::MAX);
        assert_eq!(Metrics::from_wire(&m.to_wire()).unwrap().summaries(), m.summaries());
    }

    #[test]
    fn negative_and_huge_values_are_clamped_and_counted() {
        let mut m = Metrics::new();
        m.record("x", -5);
        m.record("x", i64::MAX);
        let s = m.summaries()["x"];
        assert_eq!(s.count, 2);
        assert_eq!(s.min_us, 0, "a negative phase reads as zero, not as 1 µs");
        assert!(s.max_us >= MAX_US);
    }

    #[test]
    fn cdf_ends_at_one() {
        let mut m = Metrics::new();
        for v in [10, 20, 30, 40] {
            m.record("x", v);
        }
        let pts = cdf_points(m.get("x").unwrap());
        assert!((pts.last().unwrap().1 - 1.0).abs() < 1e-9);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
