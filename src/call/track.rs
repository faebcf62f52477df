//! A call's media tracks: what srtpd rewrites on the way out and counts on the way in.

use serde::{Deserialize, Serialize};

use super::stats::{RecvStats, SendStats};
use crate::media::codec::CodecKind;
use crate::rtp::{RtpHeader, RtpPacket, SeqNo, Ssrc};

/// Audio or video.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// The audio track.
    Audio,
    /// The video track.
    Video,
}

impl MediaKind {
    /// The name used on the control socket.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// What a muted audio track sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MuteMode {
    /// Nothing (keepalives go on).
    Drop,
    /// Comfort packets at the packet time, so relays and NAT bindings keep the flow open.
    #[default]
    Silence,
}

/// The RTP parameters of a track.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrackParams {
    /// Payload type put on outgoing packets and expected on incoming ones.
    pub payload_type: u8,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Packet duration in ms (audio).
    pub ptime_ms: u32,
    /// The payload type of the peer's telephone-events (RFC 4733 DTMF) on this track, if any.
    pub dtmf_payload_type: Option<u8>,
    /// The audio codec (`None` for video): what comfort silence, clips, recordings and a
    /// bot bridge encode and decode.
    pub codec: Option<CodecKind>,
}

/// The sending half of a track. srtpd owns the outgoing SSRC and sequence numbers: the
/// sequence advances only for packets actually sent, so gating never opens a gap, while the
/// timestamp follows the source's clock, so it has advanced by the gated time on resume.
#[derive(Clone, Debug)]
pub struct OutboundTrack {
    params: TrackParams,
    ssrc: Ssrc,
    next_seq: SeqNo,
    ts_base: u32,
    source_ts_base: Option<u32>,
    last_ts: u32,
    gated: bool,
    /// Whether telephone-events replace the source's packets for now.
    replaced: bool,
    marker_pending: bool,
    /// Whether packets srtpd made (silence, telephone-events) were sent since the source's
    /// last packet: they follow the packet clock, not the source's, and the source's next
    /// packet must not go out at or before their timestamps.
    inserted_since_source: bool,
    /// What was sent.
    pub sent: SendStats,
    /// Source packets dropped while gated.
    pub gated_drops: u64,
    /// Comfort (silence) packets sent while gated.
    pub comfort_sent: u64,
}

impl OutboundTrack {
    /// A track sending as `ssrc`, starting at `first_seq` and timestamp `ts_base`.
    pub fn new(params: TrackParams, ssrc: Ssrc, first_seq: SeqNo, ts_base: u32) -> Self {
        OutboundTrack {
            params,
            ssrc,
            next_seq: first_seq,
            ts_base,
            source_ts_base: None,
            last_ts: ts_base,
            gated: false,
            replaced: false,
            marker_pending: false,
            inserted_since_source: false,
            sent: SendStats::default(),
            gated_drops: 0,
            comfort_sent: 0,
        }
    }

    /// The outgoing SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The RTP timestamp of the last packet sent.
    pub fn last_timestamp(&self) -> u32 {
        self.last_ts
    }

    /// Whether the track is gated (muted, or video off).
    pub fn gated(&self) -> bool {
        self.gated
    }

    /// Gates or ungates the track; the first packet after ungating carries the marker bit.
    pub fn set_gated(&mut self, gated: bool) {
        if self.gated && !gated {
            self.marker_pending = true;
        }
        self.gated = gated;
    }

    /// Writes a comfort packet (silence in the track's codec, one packet time after the last
    /// one sent) into `buf` and returns its length (0, and nothing changes, if `buf` is too
    /// short). Sequence numbers stay gap-free across it.
    pub fn comfort(&mut self, buf: &mut [u8]) -> usize {
        let ts = self.next_timestamp();
        let header = RtpHeader {
            payload_type: self.params.payload_type,
            marker: false,
            seq: self.next_seq,
            timestamp: ts,
            ssrc: self.ssrc,
        };
        let silence = self
            .params
            .codec
            .unwrap_or(CodecKind::Opus)
            .silence(self.params.ptime_ms);
        let Some(len) = header.emit(buf, silence) else {
            return 0;
        };
        self.next_seq = self.next_seq.next();
        self.last_ts = ts;
        self.inserted_since_source = true;
        self.sent.packets += 1;
        self.sent.bytes += silence.len() as u64;
        self.comfort_sent += 1;
        len
    }

    /// The timestamp of a packet sent one packet time after the last one.
    pub fn next_timestamp(&self) -> u32 {
        let samples = u64::from(self.params.clock_rate) * u64::from(self.params.ptime_ms) / 1000;
        self.last_ts.wrapping_add(samples as u32)
    }

    /// Lets telephone-events replace the source's packets (dropped meanwhile), or stops.
    pub fn set_replaced(&mut self, replaced: bool) {
        self.replaced = replaced;
    }

    /// Writes a telephone-event packet (RFC 4733) into `buf`: `payload` with payload type
    /// `payload_type`, the event's start `timestamp`, and the marker on an event's first
    /// packet; the track's SSRC and next sequence number. Returns its length (0, and nothing
    /// changes, if `buf` is too short).
    pub fn telephone_event(
        &mut self,
        buf: &mut [u8],
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8; 4],
    ) -> usize {
        let header = RtpHeader {
            payload_type,
            marker,
            seq: self.next_seq,
            timestamp,
            ssrc: self.ssrc,
        };
        let Some(len) = header.emit(buf, payload) else {
            return 0;
        };
        self.next_seq = self.next_seq.next();
        // The audio after the event goes on from its end.
        let duration = u32::from(u16::from_be_bytes([payload[2], payload[3]]));
        self.last_ts = timestamp.wrapping_add(duration);
        self.inserted_since_source = true;
        self.sent.packets += 1;
        self.sent.bytes += payload.len() as u64;
        len
    }

    /// Re-anchors the timestamp mapping for a new source: its first packet goes out one
    /// packet time after the last packet sent, whatever timestamps the new source uses.
    pub fn switch_source(&mut self) {
        self.ts_base = self.next_timestamp();
        self.source_ts_base = None;
    }

    /// The packet time.
    pub fn ptime(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.params.ptime_ms.max(1)))
    }

    /// Rewrites a source packet in place for sending: SSRC, sequence number, timestamp,
    /// payload type, and the marker after a resume. Returns `false` (the packet is dropped)
    /// while the track is gated.
    pub fn prepare(&mut self, packet: &mut RtpPacket<&mut [u8]>) -> bool {
        let source_ts = packet.timestamp();
        let base = *self.source_ts_base.get_or_insert(source_ts);
        if self.gated {
            self.gated_drops += 1;
            return false;
        }
        if self.replaced {
            return false;
        }
        let mut ts = self.ts_base.wrapping_add(source_ts.wrapping_sub(base));
        if std::mem::take(&mut self.inserted_since_source)
            && (ts.wrapping_sub(self.last_ts) as i32) <= 0
        {
            // Silence or events ran ahead of the source's clock (the packet clock and the
            // source's are two clocks): go on one packet time after them instead.
            ts = self.next_timestamp();
            self.ts_base = ts.wrapping_sub(source_ts.wrapping_sub(base));
        }
        packet.set_ssrc(self.ssrc);
        packet.set_seq(self.next_seq);
        packet.set_timestamp(ts);
        packet.set_payload_type(self.params.payload_type);
        if self.marker_pending {
            packet.set_marker(true);
            self.marker_pending = false;
        }
        self.next_seq = self.next_seq.next();
        self.last_ts = ts;
        self.sent.packets += 1;
        self.sent.bytes += packet.payload().len() as u64;
        true
    }
}

/// The receiving half of a track.
#[derive(Clone, Debug)]
pub struct InboundTrack {
    /// Loss and jitter statistics.
    pub stats: RecvStats,
    /// The peer's SSRC for this track, once seen.
    pub remote_ssrc: Option<Ssrc>,
    /// Middle 32 bits of the NTP time of the peer's last sender report, and when it came.
    pub last_sr: Option<(u32, std::time::Instant)>,
}

impl InboundTrack {
    /// A track with an RTP clock of `clock_rate`.
    pub fn new(clock_rate: u32) -> Self {
        InboundTrack {
            stats: RecvStats::new(clock_rate),
            remote_ssrc: None,
            last_sr: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0x60, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0xaa, 0xbb];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p
    }

    /// An Opus track at 48 kHz, 20 ms packets, sending as SSRC 9 from sequence 100 and
    /// timestamp 5000.
    fn opus_track() -> OutboundTrack {
        let params = TrackParams {
            payload_type: 111,
            clock_rate: 48000,
            ptime_ms: 20,
            dtmf_payload_type: None,
            codec: Some(CodecKind::Opus),
        };
        OutboundTrack::new(params, Ssrc(9), SeqNo(100), 5000)
    }

    #[test]
    fn the_source_resumes_after_the_silence_sent_while_muted_even_when_it_ran_ahead() {
        let mut t = opus_track();
        let mut buf = [0u8; 64];
        let send = |t: &mut OutboundTrack, i: u32| {
            let mut p = packet(7000 + i as u16, 1000 + i * 960);
            let mut view = RtpPacket::new_checked(&mut p[..]).unwrap();
            t.prepare(&mut view).then(|| view.timestamp())
        };
        assert_eq!(send(&mut t, 0), Some(5000));
        t.set_gated(true);
        assert_eq!(send(&mut t, 1), None);
        // Three packet times of silence for the one source packet muted: the packet clock
        // ran ahead of the source's.
        let mut last = 0;
        for _ in 0..3 {
            assert!(t.comfort(&mut buf) > 0);
            last = t.last_timestamp();
        }
        assert_eq!(last, 5000 + 3 * 960);
        t.set_gated(false);
        assert_eq!(
            send(&mut t, 2),
            Some(last + 960),
            "after the silence, not inside it"
        );
        assert_eq!(
            send(&mut t, 3),
            Some(last + 2 * 960),
            "and on the source's clock after"
        );
        // Silence that stayed behind the source's clock leaves its timestamps alone.
        t.set_gated(true);
        assert_eq!(send(&mut t, 4), None);
        assert_eq!(send(&mut t, 5), None);
        assert!(t.comfort(&mut buf) > 0);
        t.set_gated(false);
        assert_eq!(send(&mut t, 6), Some(last + 5 * 960));
    }

    #[test]
    fn gating_keeps_sequence_gap_free_and_timestamps_on_the_clock() {
        let mut t = opus_track();
        let mut sent = vec![];
        for i in 0..10u32 {
            t.set_gated((3..6).contains(&i));
            let mut p = packet(7000 + i as u16, 1000 + i * 960);
            let mut view = RtpPacket::new_checked(&mut p[..]).unwrap();
            if t.prepare(&mut view) {
                sent.push((
                    view.seq().0,
                    view.timestamp(),
                    view.marker(),
                    view.ssrc(),
                    view.payload_type(),
                ));
            }
        }
        let seqs: Vec<u16> = sent.iter().map(|s| s.0).collect();
        assert_eq!(seqs, (100..107).collect::<Vec<_>>());
        assert_eq!(
            sent[3].1 - sent[2].1,
            4 * 960,
            "timestamp jumps by the gated time"
        );
        assert!(sent[3].2, "marker after resume");
        assert!(sent.iter().enumerate().all(|(i, s)| s.2 == (i == 3)));
        assert!(sent.iter().all(|s| s.3 == Ssrc(9) && s.4 == 111));
        assert_eq!(t.gated_drops, 3);
        assert_eq!(t.sent.packets, 7);
    }

    #[test]
    fn comfort_is_silence_in_the_tracks_codec() {
        let params = TrackParams {
            payload_type: 0,
            clock_rate: 8000,
            ptime_ms: 30,
            dtmf_payload_type: None,
            codec: Some(CodecKind::Pcmu),
        };
        let mut t = OutboundTrack::new(params, Ssrc(9), SeqNo(1), 0);
        let mut buf = [0u8; 400];
        let n = t.comfort(&mut buf);
        assert_eq!(n, 12 + 240, "30 ms of 8 kHz");
        assert!(buf[12..n].iter().all(|&b| b == 0xff));
        assert_eq!(t.sent.bytes, 240);
    }
}
