//! Traffic totals over many calls, ended and running: what the metrics endpoint exposes as
//! counters, which must never go back when a call ends.

use super::session::{CallStats, TrackStats};

/// One media kind's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaTotals {
    /// RTP packets sent.
    pub sent_packets: u64,
    /// RTP payload bytes sent.
    pub sent_bytes: u64,
    /// RTP packets received and authenticated.
    pub received_packets: u64,
    /// RTP payload bytes received.
    pub received_bytes: u64,
    /// Packets the peers' sequence numbers say were lost (RFC 3550).
    pub lost: u64,
    /// Received datagrams that failed SRTP authentication.
    pub dropped_auth: u64,
    /// Received datagrams that were replays or too old.
    pub dropped_replay: u64,
    /// Received datagrams dropped otherwise (malformed, unknown payload type).
    pub dropped_other: u64,
}

impl From<&TrackStats> for MediaTotals {
    fn from(t: &TrackStats) -> Self {
        MediaTotals {
            sent_packets: t.sent.packets,
            sent_bytes: t.sent.bytes,
            received_packets: t.received.packets,
            received_bytes: t.received.bytes,
            lost: t.received.lost,
            dropped_auth: t.dropped.auth,
            dropped_replay: t.dropped.replay,
            dropped_other: t.dropped.other,
        }
    }
}

impl MediaTotals {
    fn merge(&mut self, o: &MediaTotals) {
        self.sent_packets += o.sent_packets;
        self.sent_bytes += o.sent_bytes;
        self.received_packets += o.received_packets;
        self.received_bytes += o.received_bytes;
        self.lost += o.lost;
        self.dropped_auth += o.dropped_auth;
        self.dropped_replay += o.dropped_replay;
        self.dropped_other += o.dropped_other;
    }
}

/// Totals of every call a worker ran or runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficTotals {
    /// Audio tracks.
    pub audio: MediaTotals,
    /// Video tracks.
    pub video: MediaTotals,
}

impl TrafficTotals {
    /// Adds one call's statistics.
    pub fn add(&mut self, s: &CallStats) {
        if let Some(a) = &s.audio {
            self.audio.merge(&a.into());
        }
        if let Some(v) = &s.video {
            self.video.merge(&v.into());
        }
    }

    /// Adds another set of totals (another worker's).
    pub fn merge(&mut self, o: &TrafficTotals) {
        self.audio.merge(&o.audio);
        self.video.merge(&o.video);
    }
}
