//! Per-track counters and the RFC 3550 receive statistics (loss, jitter) they feed.

use serde::Serialize;

/// What was sent on a track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SendStats {
    /// RTP packets sent.
    pub packets: u64,
    /// RTP payload bytes sent.
    pub bytes: u64,
}

/// Why received packets were dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DropStats {
    /// Failed SRTP/SRTCP authentication.
    pub auth: u64,
    /// Replayed or older than the replay window.
    pub replay: u64,
    /// Malformed, unknown payload type, or otherwise unusable.
    pub other: u64,
}

/// Receive statistics of one track: RFC 3550 Appendix A.1 (sequence tracking), A.3 (loss)
/// and A.8 (interarrival jitter).
#[derive(Clone, Debug, Default)]
pub struct RecvStats {
    packets: u64,
    bytes: u64,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    started: bool,
    jitter: f64,
    last_transit: Option<i64>,
    clock_rate: u32,
    expected_prior: u64,
    received_prior: u64,
}

/// A snapshot of [`RecvStats`] for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RecvSnapshot {
    /// Packets received and authenticated.
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Packets expected but not received (never negative).
    pub lost: u64,
    /// Interarrival jitter in milliseconds.
    pub jitter_ms: f64,
}

impl RecvStats {
    /// Statistics for a track whose RTP clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        RecvStats {
            clock_rate,
            ..Default::default()
        }
    }

    /// Records an authenticated packet: its sequence number, RTP timestamp, payload size and
    /// arrival time (`arrival_s`, seconds on any monotonic clock).
    pub fn record(&mut self, seq: u16, rtp_ts: u32, payload: usize, arrival_s: f64) {
        self.packets += 1;
        self.bytes += payload as u64;
        if !self.started {
            self.started = true;
            self.base_seq = u32::from(seq);
            self.max_seq = seq;
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta != 0 && delta < 0x8000 {
                if seq < self.max_seq {
                    self.cycles += 1;
                }
                self.max_seq = seq;
            }
        }
        let arrival = (arrival_s * f64::from(self.clock_rate)) as i64;
        let transit = arrival - i64::from(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// The extended highest sequence number received.
    pub fn extended_max(&self) -> u32 {
        (self.cycles << 16) | u32::from(self.max_seq)
    }

    /// Packets expected so far.
    pub fn expected(&self) -> u64 {
        if self.started {
            u64::from(self.extended_max().wrapping_sub(self.base_seq)) + 1
        } else {
            0
        }
    }

    /// Cumulative packets lost (expected minus received, floored at zero).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    /// Jitter in RTP timestamp units.
    pub fn jitter_units(&self) -> u32 {
        self.jitter as u32
    }

    /// Fraction lost since the previous call, as RTCP's 8-bit fixed point (RFC 3550 A.3).
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.packets.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.packets;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        }
    }

    /// Whether any packet was received.
    pub fn started(&self) -> bool {
        self.started
    }

    /// A snapshot for reports.
    pub fn snapshot(&self) -> RecvSnapshot {
        RecvSnapshot {
            packets: self.packets,
            bytes: self.bytes,
            lost: self.lost(),
            jitter_ms: if self.clock_rate == 0 {
                0.0
            } else {
                (self.jitter * 1000.0 / f64::from(self.clock_rate) * 1000.0).round() / 1000.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_across_the_wrap() {
        let mut s = RecvStats::new(8000);
        let mut t = 0.0;
        for seq in (65530u16..=65535)
            .chain(0..10)
            .filter(|s| *s != 2 && *s != 65533)
        {
            s.record(seq, u32::from(seq) * 160, 100, t);
            t += 0.02;
        }
        assert_eq!(s.expected(), 16);
        assert_eq!(s.lost(), 2);
        assert_eq!(s.extended_max(), (1 << 16) | 9);
        assert_eq!(s.take_fraction_lost(), (2 * 256 / 16) as u8);
        assert_eq!(s.take_fraction_lost(), 0);
    }

    #[test]
    fn steady_arrivals_have_no_jitter() {
        let mut s = RecvStats::new(48000);
        for i in 0..100u16 {
            s.record(i, u32::from(i) * 960, 50, f64::from(i) * 0.02);
        }
        assert!(s.snapshot().jitter_ms < 0.1);
        let mut s = RecvStats::new(48000);
        for i in 0..100u16 {
            let wobble = if i % 2 == 0 { 0.0 } else { 0.01 };
            s.record(i, u32::from(i) * 960, 50, f64::from(i) * 0.02 + wobble);
        }
        assert!(s.snapshot().jitter_ms > 5.0, "{:?}", s.snapshot());
    }
}
