//! Pacing a clip: each packet is due at the clip's start plus the durations of the packets
//! before it, so timing errors of one send never accumulate into drift.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::AudioClip;

/// A clip being played out, with time passed in.
#[derive(Clone, Debug)]
pub struct Playback {
    clip: Arc<AudioClip>,
    looping: bool,
    start: Instant,
    next: usize,
    /// Samples (48 kHz) before the next packet, counted from the clip's first across loops.
    offset: u64,
    /// The `offset` due at `start` (not 0 once the playback was resumed).
    origin: u64,
}

impl Playback {
    /// Starts playing `clip` at `start`.
    pub fn new(clip: Arc<AudioClip>, looping: bool, start: Instant) -> Self {
        Playback {
            clip,
            looping,
            start,
            next: 0,
            offset: 0,
            origin: 0,
        }
    }

    /// Goes on from where it stopped, with the next packet due at `now`: for a playback that
    /// was not polled for a while (something else played meanwhile).
    pub fn resume(&mut self, now: Instant) {
        self.start = now;
        self.origin = self.offset;
    }

    /// When the next packet is due, or `None` when the clip has ended.
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.next < self.clip.packets.len()).then(|| self.due())
    }

    /// When the next packet is due, or once the clip has ended, when its last packet's
    /// audio ends.
    pub fn due(&self) -> Instant {
        self.start + Duration::from_nanos((self.offset - self.origin) * 1_000_000 / 48)
    }

    /// The next packet if it is due at `now`, with its RTP timestamp offset from the start
    /// (48 kHz samples).
    pub fn poll(&mut self, now: Instant) -> Option<(&[u8], u64)> {
        if self.next_deadline()? > now {
            return None;
        }
        let at = self.offset;
        let (data, samples) = &self.clip.packets[self.next];
        self.offset += u64::from(*samples);
        self.next += 1;
        if self.next == self.clip.packets.len() && self.looping {
            self.next = 0;
        }
        Some((data, at))
    }

    /// Whether the clip has ended (never, when looping).
    pub fn ended(&self) -> bool {
        self.next >= self.clip.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(n: usize) -> Arc<AudioClip> {
        Arc::new(AudioClip {
            codec: crate::media::codec::CodecKind::Opus,
            channels: 1,
            packets: (0..n).map(|i| (vec![0xf8, i as u8], 960)).collect(),
        })
    }

    #[test]
    fn deadlines_are_absolute() {
        let t0 = Instant::now();
        let mut p = Playback::new(clip(500), false, t0);
        let mut sent = Vec::new();
        // Poll late and irregularly: every packet still gets its own deadline.
        let mut now = t0;
        while !p.ended() {
            now += Duration::from_millis(7 + (sent.len() as u64 % 5) * 9);
            while let Some((_, ts)) = p.poll(now) {
                sent.push(ts);
            }
        }
        assert_eq!(sent.len(), 500);
        assert!(sent.windows(2).all(|w| w[1] - w[0] == 960));
        assert_eq!(p.next_deadline(), None);
        // The last packet was due 9.98 s after the first.
        assert_eq!(sent[499], 499 * 960);
    }

    #[test]
    fn a_resumed_playback_goes_on_from_where_it_stopped() {
        let t0 = Instant::now();
        let mut p = Playback::new(clip(10), false, t0);
        assert_eq!(p.poll(t0).unwrap().1, 0);
        assert_eq!(p.poll(t0 + Duration::from_millis(20)).unwrap().1, 960);
        // Not polled for 5 s, then resumed: the third packet is due at once, and the rest
        // 20 ms apart from there, with the clip's own timestamps.
        let t1 = t0 + Duration::from_secs(5);
        p.resume(t1);
        assert_eq!(p.next_deadline(), Some(t1));
        assert_eq!(p.poll(t1).unwrap().1, 1920);
        assert!(p.poll(t1 + Duration::from_millis(19)).is_none());
        assert_eq!(p.poll(t1 + Duration::from_millis(20)).unwrap().1, 2880);
    }

    #[test]
    fn looping_restarts_without_a_timestamp_jump() {
        let t0 = Instant::now();
        let mut p = Playback::new(clip(3), true, t0);
        let ts: Vec<u64> = (0..7)
            .map(|i| p.poll(t0 + Duration::from_millis(20 * i)).unwrap().1)
            .collect();
        assert_eq!(ts, vec![0, 960, 1920, 2880, 3840, 4800, 5760]);
        assert!(!p.ended());
        assert!(
            p.poll(t0 + Duration::from_millis(139)).is_none(),
            "not due yet"
        );
    }
}
