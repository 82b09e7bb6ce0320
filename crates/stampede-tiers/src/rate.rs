//! A token bucket for launch rates (`start_rate = { qps, burst }`), as kube-burner paces
//! object creation: on average `qps` launches per second, up to `burst` at once.
//!
//! Hand-written rather than taken from `governor`: its waits run on their own timer, not on
//! tokio's clock, so they could not be tested with paused time, and the whole thing is a dozen
//! lines on top of `tokio::time`.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

use stampede_core::scenario::StartRate;

#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(rate: StartRate) -> Self {
        let burst = f64::from(rate.burst.max(1));
        Self { qps: rate.qps, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Wait for one token. Waiters queue on the mutex, so tokens go out in arrival order.
    pub async fn acquire(&self) {
        let mut st = self.state.lock().await;
        loop {
            let now = Instant::now();
            let (tokens, last) = *st;
            let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
            if tokens >= 1.0 {
                *st = (tokens - 1.0, now);
                return;
            }
            *st = (tokens, now);
            tokio::time::sleep(Duration::from_secs_f64((1.0 - tokens) / self.qps)).await;
        }
    }
}

/// The stricter of two optional limits (the group's own and its share of the run's).
pub fn stricter(a: Option<StartRate>, b: Option<StartRate>) -> Option<StartRate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(StartRate { qps: a.qps.min(b.qps), burst: a.burst.min(b.burst) }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces_at_qps() {
        let rl = RateLimiter::new(StartRate { qps: 10.0, burst: 3 });
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..8 {
            rl.acquire().await;
            at.push(t0.elapsed().as_millis());
        }
        // Three at once, then one every 100 ms.
        assert_eq!(&at[..3], &[0, 0, 0]);
        for (i, t) in at[3..].iter().enumerate() {
            let want = 100 * (i as u128 + 1);
            assert!((want..want + 2).contains(t), "token {} at {t} ms, want ~{want}", i + 3);
        }
    }

    #[test]
    fn stricter_takes_the_lower_of_each() {
        let a = StartRate { qps: 5.0, burst: 10 };
        let b = StartRate { qps: 8.0, burst: 2 };
        assert_eq!(stricter(Some(a), Some(b)), Some(StartRate { qps: 5.0, burst: 2 }));
        assert_eq!(stricter(None, Some(b)), Some(b));
    }
}
