//! Where a track's outgoing media comes from, besides plain RTP from a local producer (which
//! the endpoint routes by socket): a clip (a file, or silence) paced by its
//! packets' durations, with time passed in.

use std::sync::Arc;
use std::time::Instant;

use crate::media::codec::CodecKind;
use crate::media::{AudioClip, Playback};
use crate::rtp::{RTP_FIXED_HEADER_LEN, RtpHeader};

/// A clip played as a track's source. It starts when media may flow (not while ringing) and,
/// while it plays, a local producer's packets are not sent.
#[derive(Clone, Debug)]
pub struct ClipSource {
    clip: Arc<AudioClip>,
    looping: bool,
    running: Option<Playback>,
}

/// What polling a clip gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClipPoll {
    /// A packet of this many bytes was written.
    Packet(usize),
    /// Nothing is due yet.
    Idle,
    /// The clip has ended.
    Ended,
}

impl ClipSource {
    /// Plays `clip` (again from its start each time it ends, if `looping`).
    pub fn new(clip: Arc<AudioClip>, looping: bool) -> Self {
        ClipSource {
            clip,
            looping,
            running: None,
        }
    }

    /// Endless silence in `codec`, a packet every 20 ms.
    pub fn silence(codec: CodecKind) -> Self {
        Self::new(Arc::new(AudioClip::silence(codec)), true)
    }

    /// Whether playing has begun.
    pub fn started(&self) -> bool {
        self.running.is_some()
    }

    /// Begins playing at `now`.
    pub fn start(&mut self, now: Instant) {
        self.running = Some(Playback::new(self.clip.clone(), self.looping, now));
    }

    /// Goes on from where it stopped, its next packet due at `now` (after something else
    /// played over it); a clip not started yet is left to start as usual.
    pub fn resume(&mut self, now: Instant) {
        if let Some(running) = self.running.as_mut() {
            running.resume(now);
        }
    }

    /// When the next packet is due, or when the last one's audio ends (then the clip has
    /// ended, and says so). `None` until started.
    pub fn next_deadline(&self) -> Option<Instant> {
        Some(self.running.as_ref()?.due())
    }

    /// Writes the next packet due at `now` as plain RTP (version 2, the clip's timestamp on a
    /// `clock_rate` clock; the track fills in the rest) into `buf`, which must have room for
    /// the payload and `room` bytes behind it. A packet too large for `buf` is skipped.
    pub fn poll(&mut self, now: Instant, clock_rate: u32, buf: &mut [u8], room: usize) -> ClipPoll {
        let Some(running) = self.running.as_mut() else {
            return ClipPoll::Idle;
        };
        loop {
            let Some((data, offset)) = running.poll(now) else {
                // Ended once its last packet's audio has played out.
                return if running.ended() && running.due() <= now {
                    ClipPoll::Ended
                } else {
                    ClipPoll::Idle
                };
            };
            let header = RtpHeader {
                timestamp: (offset * u64::from(clock_rate) / 48_000) as u32,
                ..RtpHeader::default()
            };
            if RTP_FIXED_HEADER_LEN + data.len() + room > buf.len() {
                continue;
            }
            let len = header.emit(buf, data).expect("checked to fit");
            return ClipPoll::Packet(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn writes_rtp_on_the_track_clock_and_ends() {
        let t0 = Instant::now();
        let mut clip = ClipSource::new(Arc::new(AudioClip::silence(CodecKind::Opus)), false);
        let mut buf = [0u8; 64];
        assert_eq!(
            clip.poll(t0, 16_000, &mut buf, 10),
            ClipPoll::Idle,
            "not started"
        );
        clip.start(t0);
        assert_eq!(clip.poll(t0, 16_000, &mut buf, 10), ClipPoll::Packet(15));
        let p = crate::rtp::RtpPacket::new_checked(&buf[..15]).unwrap();
        assert_eq!((p.timestamp(), p.payload()), (0, &[0xf8, 0xff, 0xfe][..]));
        // The one packet's audio lasts 20 ms: the clip ends then, not when it was sent.
        assert_eq!(clip.next_deadline(), Some(t0 + Duration::from_millis(20)));
        assert_eq!(
            clip.poll(t0 + Duration::from_millis(19), 16_000, &mut buf, 10),
            ClipPoll::Idle
        );
        assert_eq!(
            clip.poll(t0 + Duration::from_millis(20), 16_000, &mut buf, 10),
            ClipPoll::Ended
        );
        let mut silence = ClipSource::silence(CodecKind::Opus);
        silence.start(t0);
        for i in 0..3u32 {
            let at = t0 + Duration::from_millis(20 * u64::from(i));
            assert_eq!(silence.poll(at, 16_000, &mut buf, 10), ClipPoll::Packet(15));
            assert_eq!(
                crate::rtp::RtpPacket::new_checked(&buf[..15])
                    .unwrap()
                    .timestamp(),
                i * 320
            );
        }
        assert_eq!(
            silence.next_deadline(),
            Some(t0 + Duration::from_millis(60))
        );
    }
}
