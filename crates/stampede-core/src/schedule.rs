//! Seeded, reproducible draws of work durations and arrival times.
//!
//! Every action gets its own random stream, keyed by (seed, group, scenario, action), so an
//! action's schedule does not depend on how many other actions exist, which tier draws it, or
//! in which order: the scenario tier can plan an action just before launching it, and a rerun
//! with the same seed sends exactly the same requests at exactly the same offsets.
//!
//! Within an action, work durations and arrival times come from two different ChaCha streams
//! of the same key ([`WORK_STREAM`], [`ARRIVAL_STREAM`]), so changing the arrivals of a
//! scenario leaves its work durations unchanged and vice versa.
//!
//! No draw and no arrival offset exceeds [`MAX_DRAW`], whatever the parameters: the tiers add
//! them to clock readings, which must not overflow. With a validated scenario (every mean at
//! most [`MAX_DURATION`]) only a lognormal's far tail ever reaches it.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};

use crate::scenario::limits::MAX_DURATION;
use crate::scenario::{Arrivals, DurationDist, Group, Iat};

/// ChaCha stream of an action's work durations.
pub const WORK_STREAM: u64 = 0;
/// ChaCha stream of an action's inter-arrival times.
pub const ARRIVAL_STREAM: u64 = 1;

/// The longest draw or arrival offset: 100 × [`MAX_DURATION`], a century. Longer draws are cut
/// to it (an exponential draw exceeds 44 means with probability e^-44, so in practice only a
/// lognormal with a large sigma is cut); `tokio::time::Instant` + this cannot overflow.
pub const MAX_DRAW: Duration = Duration::from_secs(100 * MAX_DURATION.as_secs());

/// Marks the key as stampede's so no other use of the same seed bytes collides with it.
const KEY_DOMAIN: [u8; 12] = *b"stampede/v1\0";

/// The random stream of one action, on [`WORK_STREAM`].
///
/// The 256-bit ChaCha key is the seed and the three indices written side by side (plus a
/// fixed domain tag), so distinct (seed, group, scenario, action) never share a key: no hash
/// whose collisions would have to be argued away. ChaCha output under related keys is
/// independent for any practical purpose.
pub fn rng_for(seed: u64, group: u32, scenario: u32, action: u32) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[0..8].copy_from_slice(&seed.to_le_bytes());
    key[8..12].copy_from_slice(&group.to_le_bytes());
    key[12..16].copy_from_slice(&scenario.to_le_bytes());
    key[16..20].copy_from_slice(&action.to_le_bytes());
    key[20..32].copy_from_slice(&KEY_DOMAIN);
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(WORK_STREAM);
    rng
}

/// Converts a sampled number of seconds; an absurdly large draw (a lognormal tail, or
/// infinity) is cut to [`MAX_DRAW`] instead of panicking, and NaN (never drawn from valid
/// parameters) is zero.
fn secs(value: f64) -> Duration {
    if value.is_nan() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(value.max(0.0)).map_or(MAX_DRAW, |d| d.min(MAX_DRAW))
}

/// One draw of a (work) duration, at most [`MAX_DRAW`].
pub fn draw_duration<R: Rng + ?Sized>(dist: &DurationDist, rng: &mut R) -> Duration {
    draw_duration_uncut(dist, rng).min(MAX_DRAW)
}

fn draw_duration_uncut<R: Rng + ?Sized>(dist: &DurationDist, rng: &mut R) -> Duration {
    match dist {
        DurationDist::Fixed { value } => *value,
        DurationDist::Uniform { min, max } => {
            // Nanosecond resolution; u64 holds 584 years of them.
            let lo = u64::try_from(min.as_nanos()).unwrap_or(u64::MAX);
            let hi = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
            if lo >= hi {
                *min
            } else {
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
        }
        DurationDist::Exponential { mean } => {
            let unit: f64 = Exp1.sample(rng);
            secs(mean.as_secs_f64() * unit)
        }
        DurationDist::Lognormal { median, sigma } => {
            // median · e^(σZ): the median of a lognormal is e^μ.
            let z: f64 = StandardNormal.sample(rng);
            secs(median.as_secs_f64() * (sigma * z).exp())
        }
    }
}

/// One draw of an inter-arrival time, at most [`MAX_DRAW`].
pub fn draw_iat<R: Rng + ?Sized>(iat: &Iat, rng: &mut R) -> Duration {
    let d = match iat {
        Iat::Fixed { value } => *value,
        Iat::Exponential { mean } => {
            let unit: f64 = Exp1.sample(rng);
            secs(mean.as_secs_f64() * unit)
        }
        Iat::ShiftedExponential { shift, mean } => {
            let unit: f64 = Exp1.sample(rng);
            shift.saturating_add(secs(mean.as_secs_f64() * unit))
        }
    };
    d.min(MAX_DRAW)
}

/// The scheduled offset of each of an action's `n` requests from its first request's time,
/// or `None` for a closed loop (each request follows the previous response).
///
/// Requests go in bursts of `burst` that share one time; the first burst is at offset 0 and
/// each next burst one drawn inter-arrival time after the previous one. The last burst may
/// be short when `burst` does not divide `n`. Offsets stop growing at [`MAX_DRAW`].
pub fn arrival_offsets<R: Rng + ?Sized>(arrivals: &Arrivals, n: u32, rng: &mut R) -> Option<Vec<Duration>> {
    let Arrivals::Open { iat, burst } = arrivals else {
        return None;
    };
    // Validation refuses burst 0; treat it as 1 rather than divide by zero.
    let burst = (*burst).max(1);
    let mut offsets = Vec::with_capacity(n as usize);
    let mut at = Duration::ZERO;
    for i in 0..n {
        if i > 0 && i % burst == 0 {
            at = at.saturating_add(draw_iat(iat, rng)).min(MAX_DRAW);
        }
        offsets.push(at);
    }
    Some(offsets)
}

/// Everything random about one action, drawn up front.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPlan {
    /// Work duration of each of the N requests, in order.
    pub work_durations: Vec<Duration>,
    /// Scheduled offset of each request from the action's first-request time (open loop);
    /// `None` for a closed loop.
    pub arrival_offsets: Option<Vec<Duration>>,
}

/// The plan of action `action` of scenario `scenario` of group `group_index`.
pub fn plan_action(group: &Group, seed: u64, group_index: u32, scenario: u32, action: u32) -> ActionPlan {
    let mut work_rng = rng_for(seed, group_index, scenario, action);
    let work_durations = (0..group.requests).map(|_| draw_duration(&group.work.duration, &mut work_rng)).collect();

    let mut arrival_rng = rng_for(seed, group_index, scenario, action);
    arrival_rng.set_stream(ARRIVAL_STREAM);
    let arrival_offsets = arrival_offsets(&group.arrivals, group.requests, &mut arrival_rng);

    ActionPlan { work_durations, arrival_offsets }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{from_cli, Overrides, Work, WorkKind};

    const DRAWS: usize = 20_000;
    const SEED: u64 = 0x5EED;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn secs_of(draws: &[Duration]) -> Vec<f64> {
        draws.iter().map(Duration::as_secs_f64).collect()
    }

    fn mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    fn coefficient_of_variation(xs: &[f64]) -> f64 {
        let m = mean(xs);
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
        var.sqrt() / m
    }

    fn within(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected
    }

    fn durations(dist: &DurationDist) -> Vec<Duration> {
        let mut rng = rng_for(SEED, 0, 0, 0);
        (0..DRAWS).map(|_| draw_duration(dist, &mut rng)).collect()
    }

    fn iats(iat: &Iat) -> Vec<Duration> {
        let mut rng = rng_for(SEED, 0, 0, 0);
        (0..DRAWS).map(|_| draw_iat(iat, &mut rng)).collect()
    }

    fn open_group(iat: Iat, burst: u32, requests: u32) -> Group {
        let mut group = from_cli(
            &Overrides { requests: Some(requests), ..Overrides::default() },
            &crate::scenario::catalog::NoRuntimes,
        )
        .unwrap()
        .groups
        .remove(0);
        group.arrivals = Arrivals::Open { iat, burst };
        group.work = Work { kind: WorkKind::Sleep, duration: DurationDist::Exponential { mean: ms(10) } };
        group
    }

    #[test]
    fn same_seed_same_schedule() {
        let group = open_group(Iat::Exponential { mean: ms(100) }, 2, 50);
        assert_eq!(plan_action(&group, SEED, 1, 2, 3), plan_action(&group, SEED, 1, 2, 3));
    }

    #[test]
    fn different_indices_or_seed_different_schedule() {
        let group = open_group(Iat::Exponential { mean: ms(100) }, 1, 50);
        let base = plan_action(&group, SEED, 1, 2, 3);
        for other in [
            plan_action(&group, SEED + 1, 1, 2, 3),
            plan_action(&group, SEED, 0, 2, 3),
            plan_action(&group, SEED, 1, 0, 3),
            plan_action(&group, SEED, 1, 2, 0),
            // Swapped indices must not collide either.
            plan_action(&group, SEED, 1, 3, 2),
        ] {
            assert_ne!(base.work_durations, other.work_durations);
            assert_ne!(base.arrival_offsets, other.arrival_offsets);
        }
    }

    #[test]
    fn work_and_arrivals_use_separate_streams() {
        let closed = {
            let mut g = open_group(Iat::Exponential { mean: ms(100) }, 1, 50);
            g.arrivals = Arrivals::Closed;
            g
        };
        let open = open_group(Iat::Exponential { mean: ms(100) }, 1, 50);
        let (closed, open) = (plan_action(&closed, SEED, 0, 0, 0), plan_action(&open, SEED, 0, 0, 0));
        assert_eq!(closed.arrival_offsets, None);
        assert_eq!(closed.work_durations, open.work_durations);
    }

    #[test]
    fn exponential_iat_mean_and_cv() {
        let xs = secs_of(&iats(&Iat::Exponential { mean: ms(100) }));
        assert!(within(mean(&xs), 0.100, 0.03), "mean {}", mean(&xs));
        let cv = coefficient_of_variation(&xs);
        assert!(within(cv, 1.0, 0.03), "cv {cv}");
    }

    #[test]
    fn shifted_exponential_iat() {
        let draws = iats(&Iat::ShiftedExponential { shift: ms(50), mean: ms(50) });
        assert!(draws.iter().all(|d| *d >= ms(50)));
        let xs = secs_of(&draws);
        assert!(within(mean(&xs), 0.100, 0.03), "mean {}", mean(&xs));
        // The part above the shift is exponential: its CV is 1.
        let above: Vec<f64> = xs.iter().map(|x| x - 0.050).collect();
        assert!(within(coefficient_of_variation(&above), 1.0, 0.03));
    }

    #[test]
    fn uniform_within_bounds_mean_at_midpoint() {
        let draws = durations(&DurationDist::Uniform { min: ms(5), max: ms(15) });
        assert!(draws.iter().all(|d| (ms(5)..=ms(15)).contains(d)));
        let xs = secs_of(&draws);
        assert!(within(mean(&xs), 0.010, 0.01), "mean {}", mean(&xs));
        // Both ends are reached, not just the middle.
        assert!(draws.iter().any(|d| *d < ms(6)) && draws.iter().any(|d| *d > ms(14)));
    }

    #[test]
    fn exponential_work_mean() {
        let xs = secs_of(&durations(&DurationDist::Exponential { mean: ms(10) }));
        assert!(within(mean(&xs), 0.010, 0.03), "mean {}", mean(&xs));
    }

    #[test]
    fn lognormal_median_and_mean() {
        let dist = DurationDist::Lognormal { median: ms(10), sigma: 0.5 };
        let mut xs = secs_of(&durations(&dist));
        xs.sort_by(f64::total_cmp);
        let median = xs[xs.len() / 2];
        assert!(within(median, 0.010, 0.03), "median {median}");
        assert!(within(mean(&xs), dist.mean().as_secs_f64(), 0.03), "mean {}", mean(&xs));
    }

    #[test]
    fn fixed_is_exactly_fixed() {
        assert!(durations(&DurationDist::fixed(ms(7))).iter().all(|d| *d == ms(7)));
        assert!(iats(&Iat::Fixed { value: ms(3) }).iter().all(|d| *d == ms(3)));
    }

    #[test]
    fn bursts_share_times_and_start_at_zero() {
        let mut rng = rng_for(SEED, 0, 0, 0);
        let arrivals = Arrivals::Open { iat: Iat::Fixed { value: ms(100) }, burst: 3 };
        let offsets = arrival_offsets(&arrivals, 8, &mut rng).unwrap();
        let want: Vec<Duration> = [0, 0, 0, 100, 100, 100, 200, 200].into_iter().map(ms).collect();
        assert_eq!(offsets, want);

        let arrivals = Arrivals::Open { iat: Iat::Exponential { mean: ms(100) }, burst: 4 };
        let offsets = arrival_offsets(&arrivals, 4_000, &mut rng).unwrap();
        assert_eq!(offsets[0], Duration::ZERO);
        for burst in offsets.chunks(4) {
            assert!(burst.iter().all(|t| *t == burst[0]));
        }
        let starts: Vec<Duration> = offsets.chunks(4).map(|b| b[0]).collect();
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
        // 1000 bursts, 999 gaps averaging 100ms.
        let total = starts.last().unwrap().as_secs_f64();
        assert!(within(total / 999.0, 0.100, 0.1), "mean gap {}", total / 999.0);
    }

    #[test]
    fn closed_loop_has_no_offsets() {
        let mut rng = rng_for(SEED, 0, 0, 0);
        assert_eq!(arrival_offsets(&Arrivals::Closed, 10, &mut rng), None);
    }

    #[test]
    fn plan_has_one_entry_per_request() {
        let group = open_group(Iat::Fixed { value: ms(10) }, 1, 37);
        let plan = plan_action(&group, SEED, 0, 0, 0);
        assert_eq!(plan.work_durations.len(), 37);
        assert_eq!(plan.arrival_offsets.unwrap().len(), 37);
    }
}
