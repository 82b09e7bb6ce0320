//! Client-side pacing of API calls, like client-go's (and so kube-burner's) QPS and burst: a
//! token bucket holding `burst` tokens, refilled at `qps` per second. Every create and delete
//! waits for a token; watches and reads do not (one watch per tier is no load).

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Pacer {
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Pacer { qps, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Wait for one token.
    pub async fn acquire(&self) {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.qps).min(self.burst);
        s.1 = now;
        if s.0 < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - s.0) / self.qps);
            // Holding the lock while waiting keeps callers in order (first come, first paced).
            tokio::time::sleep(wait).await;
            s.0 = 1.0;
            s.1 = Instant::now();
        }
        s.0 -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_at_once_then_qps() {
        let p = Pacer::new(10.0, 5);
        let t0 = Instant::now();
        for _ in 0..5 {
            p.acquire().await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
        for _ in 0..10 {
            p.acquire().await;
        }
        let e = t0.elapsed().as_secs_f64();
        assert!((e - 1.0).abs() < 0.01, "10 more calls at 10 qps took {e} s");
    }
}
