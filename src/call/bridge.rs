//! A call's audio bridged to a voice bot, with time passed in: every packet time the peer's
//! audio goes to the bot as one 20 ms frame (Twilio µ-law message or L16 binary frame) and
//! the bot's queued audio comes back as one RTP packet for the track's send path; DTMF and
//! marks become the dialect's messages. The messages leave through a [`BridgeOutlet`] the I/O
//! shell provides (a bounded queue to the WebSocket); nothing here waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::media::bridge_audio::{BridgeAudioError, PcmReceiver, PcmSender};
use crate::media::bridge_frame::{BridgeFormat, BridgeStream, write_l16};
use crate::media::codec::{AudioEncoder, CodecKind};
use crate::media::jitter::JitterStats;
use crate::media::resample::FRAME_MS;
use crate::rtp::{RtpHeader, RtpPacket, SeqNo, Ssrc};

use super::TrackParams;

/// A message for the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeMessage {
    /// A text frame (JSON).
    Text(String),
    /// A binary frame (L16 audio).
    Binary(Vec<u8>),
    /// The stream's last message (`stop`, a text frame): send it, then close the WebSocket.
    /// One message, so that nothing the bot does can come between the two.
    Stop(String),
}

/// Where a bridge's messages go: the shell's bounded queue to the WebSocket. Must not block.
pub trait BridgeOutlet: Send + Sync {
    /// Takes a message (a full queue drops its oldest audio, counted by the outlet).
    fn send(&self, message: BridgeMessage);
}

/// What the bot sent, read by the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeInput {
    /// µ-law 8 kHz audio (Twilio dialect).
    Ulaw(Vec<u8>),
    /// 16-bit PCM at the bridge's rate (L16 dialect).
    Pcm(Vec<i16>),
    /// A mark to echo once the audio before it has been sent.
    Mark(String),
    /// Drop the queued audio now.
    Clear,
}

/// How a bridge is attached.
#[derive(Clone)]
pub struct BridgeSpec {
    /// The dialect and rate.
    pub format: BridgeFormat,
    /// The stream's id, as the bot sees it (`streamSid`).
    pub stream_sid: String,
    /// Twilio's `customParameters`.
    pub parameters: Map<String, Value>,
    /// How much of the bot's audio may wait, ms.
    pub max_queue_ms: u32,
    /// Whether an empty queue sends silence (else nothing).
    pub silence_when_idle: bool,
    /// Where messages go.
    pub outlet: Arc<dyn BridgeOutlet>,
}

impl std::fmt::Debug for BridgeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeSpec")
            .field("format", &self.format)
            .field("stream_sid", &self.stream_sid)
            .finish_non_exhaustive()
    }
}

/// A bridge's figures, for `call.stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BridgeStats {
    /// Frames of the peer's audio sent to the bot.
    pub frames_to_bot: u64,
    /// Packets of the bot's audio sent to the peer.
    pub packets_from_bot: u64,
    /// Samples of the bot's audio dropped because its queue was full.
    pub bot_audio_dropped: u64,
    /// The receive path's jitter buffer.
    pub jitter: JitterStats,
}

/// The bridge of one call's audio track.
pub struct CallBridge {
    stream: BridgeStream,
    outlet: Arc<dyn BridgeOutlet>,
    rx: PcmReceiver,
    tx: PcmSender,
    /// µ-law for the Twilio dialect.
    ulaw: Option<AudioEncoder>,
    ulaw_frame: Vec<u8>,
    payload_type: u8,
    /// Samples of the track's clock a packet covers.
    step: u32,
    ptime: Duration,
    started: Instant,
    next_tick: Instant,
    /// The plain RTP packets' own numbering (the session rewrites both).
    seq: u16,
    timestamp: u32,
    silence_when_idle: bool,
    passed: Vec<String>,
    stats: BridgeStats,
}

impl CallBridge {
    /// A bridge for the audio track `track`, starting at `now`: its first messages
    /// (`connected`, `start`) go out at once. It hears the peer's packets of the track's
    /// packet time and sends the bot's audio in 20 ms packets on the track's RTP clock.
    pub fn new(
        spec: BridgeSpec,
        call_id: &str,
        track: &TrackParams,
        now: Instant,
    ) -> Result<Self, BridgeAudioError> {
        let rate = spec.format.rate();
        let codec = track.codec.unwrap_or(CodecKind::Opus);
        let mut stream = BridgeStream::new(spec.format, spec.stream_sid, call_id);
        if let Some(m) = stream.connected() {
            spec.outlet.send(BridgeMessage::Text(m));
        }
        spec.outlet
            .send(BridgeMessage::Text(stream.start(&spec.parameters)));
        Ok(CallBridge {
            rx: PcmReceiver::new(codec, track.ptime_ms, track.clock_rate, rate)?,
            tx: PcmSender::new(codec, rate, spec.max_queue_ms)?,
            ulaw: match spec.format {
                BridgeFormat::Twilio => Some(AudioEncoder::new(CodecKind::Pcmu)?),
                BridgeFormat::L16 { .. } => None,
            },
            ulaw_frame: vec![0; 160],
            stream,
            outlet: spec.outlet,
            payload_type: track.payload_type,
            step: track.clock_rate / 1000 * FRAME_MS,
            ptime: Duration::from_millis(u64::from(FRAME_MS)),
            started: now,
            next_tick: now,
            seq: 0,
            timestamp: 0,
            silence_when_idle: spec.silence_when_idle,
            passed: Vec::new(),
            stats: BridgeStats::default(),
        })
    }

    /// The stream's id.
    pub fn stream_sid(&self) -> &str {
        self.stream.stream_sid()
    }

    /// The figures so far.
    pub fn stats(&self) -> BridgeStats {
        BridgeStats {
            bot_audio_dropped: self.tx.dropped,
            jitter: self.rx.stats(),
            ..self.stats
        }
    }

    /// When [`Self::due`] should next run.
    pub fn next_deadline(&self) -> Instant {
        self.next_tick
    }

    /// An authenticated packet of the peer's audio (plain RTP).
    pub fn on_media(&mut self, packet: &[u8], now: Instant) {
        if let Ok(p) = RtpPacket::new_checked(packet) {
            self.rx
                .on_packet(p.seq().0, p.timestamp(), p.payload(), now);
        }
    }

    /// The peer pressed a key.
    pub fn on_dtmf(&mut self, digit: char) {
        self.outlet
            .send(BridgeMessage::Text(self.stream.dtmf(digit)));
    }

    /// What the bot sent.
    pub fn input(&mut self, input: BridgeInput) {
        match input {
            BridgeInput::Ulaw(bytes) => {
                self.tx.push(
                    bytes
                        .iter()
                        .map(|&b| audio_codec_algorithms::decode_ulaw(b)),
                );
            }
            BridgeInput::Pcm(samples) => {
                self.tx.push(samples.into_iter());
            }
            BridgeInput::Mark(name) => self.tx.mark(name),
            BridgeInput::Clear => self.tx.clear(&mut self.passed),
        }
        self.tell_marks();
    }

    fn tell_marks(&mut self) {
        for name in std::mem::take(&mut self.passed) {
            self.outlet
                .send(BridgeMessage::Text(self.stream.mark(&name)));
        }
    }

    /// One packet time's work if it is due at `now`: the peer's next frame to the bot, and
    /// the bot's next packet written (plain RTP, before rewriting) into `packet`, whose
    /// length is returned. `None` when nothing is due, or the bot has nothing to send and
    /// silence is not wanted.
    pub fn due(&mut self, now: Instant, packet: &mut [u8]) -> Option<usize> {
        if now < self.next_tick {
            return None;
        }
        // Paced by absolute deadlines; after a stall, resume from now rather than burst.
        self.next_tick += self.ptime;
        if self.next_tick + self.ptime < now {
            self.next_tick = now + self.ptime;
        }
        self.send_frame_to_bot(now);
        let out = self.next_packet_from_bot(packet);
        self.tell_marks();
        out
    }

    /// The peer's next 20 ms to the bot.
    fn send_frame_to_bot(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.started).as_millis() as u64;
        let Some(frame) = self.rx.tick(now) else {
            return;
        };
        let message = match self.ulaw.as_mut() {
            Some(ulaw) => {
                if ulaw.encode(frame, &mut self.ulaw_frame).is_err() {
                    return;
                }
                let mut text = String::with_capacity(320);
                self.stream.media(&self.ulaw_frame, elapsed, &mut text);
                BridgeMessage::Text(text)
            }
            None => {
                let mut bytes = Vec::with_capacity(frame.len() * 2);
                write_l16(frame, &mut bytes);
                BridgeMessage::Binary(bytes)
            }
        };
        self.stats.frames_to_bot += 1;
        self.outlet.send(message);
    }

    /// The bot's next packet (or silence), as plain RTP in `packet`.
    fn next_packet_from_bot(&mut self, packet: &mut [u8]) -> Option<usize> {
        let header_len = 12;
        let body = packet.get_mut(header_len..)?;
        let n = match self.tx.next_payload(body, &mut self.passed) {
            Ok(Some(n)) => {
                self.stats.packets_from_bot += 1;
                n
            }
            Ok(None) if self.silence_when_idle => self.tx.silence(body).ok()?,
            Ok(None) | Err(_) => {
                self.timestamp = self.timestamp.wrapping_add(self.step);
                return None;
            }
        };
        let header = RtpHeader {
            payload_type: self.payload_type,
            marker: false,
            seq: SeqNo(self.seq),
            timestamp: self.timestamp,
            ssrc: Ssrc(0),
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.step);
        let mut bytes = [0u8; 12];
        header.emit(&mut bytes, &[])?;
        packet[..header_len].copy_from_slice(&bytes);
        Some(header_len + n)
    }

    /// Ends the stream: `stop`, then the WebSocket closes.
    pub fn stop(&mut self) {
        self.outlet.send(BridgeMessage::Stop(self.stream.stop()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<BridgeMessage>>);

    impl BridgeOutlet for Collect {
        fn send(&self, message: BridgeMessage) {
            self.0.lock().unwrap().push(message);
        }
    }

    impl Collect {
        fn events(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .drain(..)
                .flat_map(|m| {
                    let event = |t: &str| {
                        let v: Value = serde_json::from_str(t).unwrap();
                        v["event"].as_str().unwrap().to_owned()
                    };
                    match m {
                        BridgeMessage::Text(t) => vec![event(&t)],
                        BridgeMessage::Binary(b) => vec![format!("binary {}", b.len())],
                        BridgeMessage::Stop(t) => vec![event(&t), "close".to_owned()],
                    }
                })
                .collect()
        }
    }

    fn track(codec: CodecKind, payload_type: u8, clock_rate: u32) -> TrackParams {
        TrackParams {
            payload_type,
            clock_rate,
            ptime_ms: 20,
            dtmf_payload_type: None,
            codec: Some(codec),
        }
    }

    fn bridge(format: BridgeFormat, outlet: &Arc<Collect>, now: Instant) -> CallBridge {
        CallBridge::new(
            BridgeSpec {
                format,
                stream_sid: "MZ1".into(),
                parameters: Map::new(),
                max_queue_ms: 1_000,
                silence_when_idle: false,
                outlet: outlet.clone(),
            },
            "C1",
            &track(CodecKind::Pcmu, 0, 8_000),
            now,
        )
        .unwrap()
    }

    #[test]
    fn a_twilio_stream_from_start_to_stop() {
        let t0 = Instant::now();
        let outlet = Arc::new(Collect::default());
        let mut b = bridge(BridgeFormat::Twilio, &outlet, t0);
        assert_eq!(outlet.events(), ["connected", "start"]);
        let mut packet = [0u8; 1500];
        // The peer's PCMU: one packet per 20 ms; the bot's µ-law: 30 ms, then a mark.
        b.input(BridgeInput::Ulaw(vec![0xff; 240]));
        b.input(BridgeInput::Mark("m1".into()));
        let mut sent = Vec::new();
        for k in 0..5u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(k));
            let mut rtp = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
            rtp[2..4].copy_from_slice(&k.to_be_bytes());
            rtp[4..8].copy_from_slice(&(u32::from(k) * 160).to_be_bytes());
            rtp.extend_from_slice(&[0xff; 160]);
            b.on_media(&rtp, now);
            if let Some(n) = b.due(now, &mut packet) {
                let p = RtpPacket::new_checked(&packet[..n]).unwrap();
                sent.push((p.seq().0, p.timestamp(), p.payload().len()));
            }
            assert_eq!(b.due(now, &mut packet), None, "once per packet time");
        }
        // 30 ms of the bot's audio: two packets (the second padded), then nothing.
        assert_eq!(sent, [(0, 0, 160), (1, 160, 160)]);
        let events = outlet.events();
        let media = events.iter().filter(|e| *e == "media").count();
        assert!((3..=5).contains(&media), "{events:?}");
        assert_eq!(
            events.iter().filter(|e| *e == "mark").count(),
            1,
            "{events:?}"
        );
        b.on_dtmf('7');
        b.stop();
        assert_eq!(outlet.events(), ["dtmf", "stop", "close"]);
        assert_eq!(b.stats().packets_from_bot, 2);
    }

    #[test]
    fn clear_stops_the_bots_audio_at_the_next_packet_time_and_tells_its_marks() {
        let t0 = Instant::now();
        let outlet = Arc::new(Collect::default());
        let mut b = bridge(BridgeFormat::Twilio, &outlet, t0);
        outlet.events();
        let mut packet = [0u8; 1500];
        // A second of the bot's audio, marked at its end.
        b.input(BridgeInput::Ulaw(vec![0x7f; 8_000]));
        b.input(BridgeInput::Mark("end".into()));
        for k in 0..3 {
            let now = t0 + Duration::from_millis(20 * k);
            assert!(b.due(now, &mut packet).is_some(), "packet {k}");
        }
        assert!(outlet.events().iter().all(|e| e != "mark"), "not yet");
        // Barge-in between two packet times: the next one sends nothing of it.
        b.input(BridgeInput::Clear);
        assert_eq!(outlet.events(), ["mark"], "the mark is told at once");
        assert_eq!(b.due(t0 + Duration::from_millis(60), &mut packet), None);
        assert_eq!(b.stats().packets_from_bot, 3);
    }

    #[test]
    fn an_l16_bridge_sends_binary_frames_and_silence_when_asked() {
        let t0 = Instant::now();
        let outlet = Arc::new(Collect::default());
        let mut b = CallBridge::new(
            BridgeSpec {
                format: BridgeFormat::L16 { rate: 16_000 },
                stream_sid: "S".into(),
                parameters: Map::new(),
                max_queue_ms: 1_000,
                silence_when_idle: true,
                outlet: outlet.clone(),
            },
            "C1",
            &track(CodecKind::Opus, 111, 48_000),
            t0,
        )
        .unwrap();
        assert_eq!(outlet.events(), ["start"]);
        let mut enc = AudioEncoder::new(CodecKind::Opus).unwrap();
        let mut packet = [0u8; 1500];
        let mut silent = 0;
        for k in 0..10u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(k));
            let mut rtp = vec![0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
            rtp[2..4].copy_from_slice(&k.to_be_bytes());
            rtp[4..8].copy_from_slice(&(u32::from(k) * 960).to_be_bytes());
            let mut opus = [0u8; 400];
            let n = enc.encode(&[0i16; 960], &mut opus).unwrap();
            rtp.extend_from_slice(&opus[..n]);
            b.on_media(&rtp, now);
            if b.due(now, &mut packet).is_some() {
                silent += 1;
            }
        }
        assert_eq!(
            silent, 10,
            "silence every packet time while the bot says nothing"
        );
        let events = outlet.events();
        assert!(
            events.iter().filter(|e| *e == "binary 640").count() >= 8,
            "{events:?}"
        );
    }
}
