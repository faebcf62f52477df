//! A token bucket with time passed in: the one rate limiter of the core (trial
//! authentications per source, STUN reply bytes).

use std::time::Instant;

/// Up to `burst` tokens, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    per_second: u64,
    burst: u64,
    tokens: u64,
    /// When `tokens` was last refilled; `None` until first used (the bucket starts full).
    at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_second: u64, burst: u64) -> Self {
        TokenBucket {
            per_second,
            burst,
            tokens: burst,
            at: None,
        }
    }

    /// Takes up to `wanted` tokens at `now`; returns how many were taken.
    pub fn take_up_to(&mut self, wanted: u64, now: Instant) -> u64 {
        self.refill(now);
        let granted = wanted.min(self.tokens);
        self.tokens -= granted;
        granted
    }

    /// Takes `n` tokens at `now` if there are that many; `false` (and nothing taken) if not.
    pub fn take(&mut self, n: u64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < n {
            return false;
        }
        self.tokens -= n;
        true
    }

    fn refill(&mut self, now: Instant) {
        let Some(at) = self.at else {
            self.at = Some(now);
            return;
        };
        let elapsed_us = now.saturating_duration_since(at).as_micros();
        let refill = elapsed_us * u128::from(self.per_second) / 1_000_000;
        if refill > 0 {
            self.tokens = (u128::from(self.tokens) + refill).min(u128::from(self.burst)) as u64;
            // Keep the remainder: advance by the time the tokens given stand for.
            let used_us = refill * 1_000_000 / u128::from(self.per_second.max(1));
            self.at = Some(at + std::time::Duration::from_micros(used_us as u64));
            if self.tokens == self.burst {
                self.at = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 100);
        assert_eq!(b.take_up_to(150, t0), 100);
        assert!(!b.take(1, t0));
        assert!(b.take(10, t0 + Duration::from_millis(10)));
        assert!(!b.take(1, t0 + Duration::from_millis(10)));
        let mut granted = 0;
        for ms in 11..=1010 {
            granted += b.take_up_to(5, t0 + Duration::from_millis(ms));
        }
        assert_eq!(granted, 1000, "one second at 1000/s");
        assert_eq!(b.take_up_to(1000, t0 + Duration::from_secs(60)), 100);
    }
}
