//! How many trial authentications datagrams from one source address may cost: on a shared
//! port, a stream no call knows, from an address no call knows, can only be matched to a
//! call waiting for its first packet by trying that call's keys. Each source gets a small
//! token bucket, so that a flood (of random SSRCs, from anywhere) costs a bounded number of
//! HMACs per second per source and cannot starve the calls whose streams are known.

use std::net::IpAddr;
use std::time::Instant;

use super::token_bucket::TokenBucket;

/// Buckets kept; sources hash onto them (a collision only shares a bucket).
const BUCKETS: usize = 1024;

/// Per-source token buckets of trial authentications.
pub struct TrialBudget {
    buckets: Box<[(Option<IpAddr>, TokenBucket)]>,
    per_second: u64,
    burst: u64,
    seed: u64,
}

impl std::fmt::Debug for TrialBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrialBudget")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl TrialBudget {
    /// Each source may cost `per_second` trials a second, `burst` at once.
    pub fn new(per_second: u64, burst: u64) -> Self {
        TrialBudget {
            buckets: vec![(None, TokenBucket::new(per_second, burst)); BUCKETS].into_boxed_slice(),
            per_second,
            burst,
            seed: rand::random(),
        }
    }

    /// Takes up to `wanted` trials from `source`'s bucket at `now`; returns how many it may
    /// make.
    pub fn take(&mut self, source: IpAddr, wanted: u64, now: Instant) -> u64 {
        let bits = match source {
            IpAddr::V4(v4) => u128::from(v4.to_bits()),
            IpAddr::V6(v6) => v6.to_bits(),
        };
        let h = (bits as u64 ^ (bits >> 64) as u64 ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (owner, bucket) = &mut self.buckets[(h >> 32) as usize % BUCKETS];
        if *owner != Some(source) {
            *owner = Some(source);
            *bucket = TokenBucket::new(self.per_second, self.burst);
        }
        bucket.take_up_to(wanted, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_source_gets_its_burst_then_its_rate() {
        let mut b = TrialBudget::new(100, 20);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(b.take(a, 16, t0), 16);
        assert_eq!(b.take(a, 16, t0), 4);
        assert_eq!(b.take(a, 16, t0), 0);
        assert_eq!(b.take(other, 4, t0), 4, "another source has its own bucket");
        assert_eq!(b.take(a, 16, t0 + Duration::from_millis(50)), 5);
        let granted: u64 = (1..=1000)
            .map(|ms| b.take(a, 4, t0 + Duration::from_millis(50 + ms)))
            .sum();
        assert_eq!(granted, 100, "one second at 100/s");
    }
}
