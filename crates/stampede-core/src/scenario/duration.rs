//! Durations as users write them: `"250us"`, `"10ms"`, `"1.5s"`, `"2m"`, `"1h"`.

use std::time::Duration;

use super::limits::{MAX_DURATION, MAX_DURATION_TEXT};

/// What [`parse_duration`] accepts, quoted in every error so the user sees the fix.
pub(crate) const DURATION_SYNTAX: &str =
    "a non-negative number and a unit (us, ms, s, m or h), e.g. \"250us\", \"10ms\", \"1.5s\", \"2m\"";

/// Units in nanoseconds. `µs` is accepted next to `us` because people paste it.
const UNITS: [(&str, u128); 6] = [
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// Parses `"10ms"`, `"1.5s"`, `"250us"`, `"2m"`, `"1h"`, `"0s"`.
///
/// Resolution is one microsecond, because every duration ends up in a `_us` field of
/// `results.json`; a finer value is refused rather than silently rounded. At most
/// [`MAX_DURATION`] (365 days), so the tiers' clock arithmetic cannot overflow. The error says
/// what is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let bad = |why: &str| format!("invalid duration \"{s}\": {why}; expected {DURATION_SYNTAX}");
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.starts_with('-') {
        return Err(bad("durations cannot be negative"));
    }
    let unit_at = text.find(|c: char| c.is_alphabetic()).ok_or_else(|| bad("the unit is missing"))?;
    let (number, unit) = (text[..unit_at].trim_end(), &text[unit_at..]);
    let unit_ns = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, ns)| *ns)
        .ok_or_else(|| bad(&format!("unknown unit \"{unit}\"")))?;

    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || number.ends_with('.') {
        return Err(bad(&format!("\"{number}\" is not a number")));
    }
    // Exact decimal arithmetic: 0.1s must be exactly 100ms, which f64 does not promise.
    let whole: u128 = whole.parse().map_err(|_| bad("the number is too large"))?;
    if fraction.len() > 18 {
        return Err(bad("too many decimals"));
    }
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| bad("bad decimals"))? };
    let fraction_ns = fraction * unit_ns;
    let total_ns = whole
        .checked_mul(unit_ns)
        .and_then(|ns| ns.checked_add(fraction_ns / scale))
        .filter(|ns| *ns <= u128::from(u64::MAX))
        .ok_or_else(|| bad("the duration is too large"))?;
    if fraction_ns % scale != 0 || total_ns % 1_000 != 0 {
        return Err(bad("the resolution is one microsecond"));
    }
    let d = Duration::from_nanos(total_ns as u64);
    if d > MAX_DURATION {
        return Err(bad(&format!("the duration is too large, the limit is {MAX_DURATION_TEXT}")));
    }
    Ok(d)
}

/// Formats a duration the way [`parse_duration`] reads it, in the largest exact unit
/// (`"1500ms"`, not `"1.5s"`), so error messages and `Display` round-trip.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        return "0s".to_owned();
    }
    for (name, unit_us) in [("h", 3_600_000_000u128), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000)] {
        if us % unit_us == 0 {
            return format!("{}{name}", us / unit_us);
        }
    }
    format!("{us}us")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_unit_and_decimals() {
        let ok = [
            ("10ms", Duration::from_millis(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("0s", Duration::ZERO),
            ("0.1s", Duration::from_millis(100)),
            (" 10 ms ", Duration::from_millis(10)),
            ("0.001ms", Duration::from_micros(1)),
            ("8760h", MAX_DURATION),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_with_what_is_allowed() {
        for text in [
            "",
            "10",
            "-5ms",
            "5 parsecs",
            "1.s",
            ".5s",
            "1.2.3s",
            "1ns",
            "0.0001ms",
            "99999999999999h",
            "8760.000001h",
            "8761h",
            "ms",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("expected a non-negative number and a unit"), "{text}: {err}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "1500ms", "250us", "2m", "1h", "30s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
