//! A bridged track's audio, with time passed in: what the peer sends becomes 20 ms PCM frames
//! at the bridge's rate ([`PcmReceiver`]: jitter buffer, decode with loss concealment and FEC,
//! resampling), and what the bot sends becomes the track's packets ([`PcmSender`]: a bounded
//! queue paced by the track's clock, resampling, encoding; `clear` and marks). Buffers are made
//! once: a frame either way allocates nothing.

use std::collections::VecDeque;
use std::time::Instant;

use super::codec::{AudioDecoder, AudioEncoder, CodecError, CodecKind, MAX_FRAME_SAMPLES};
use super::jitter::{JitterBuffer, JitterStats, Playout};
use super::resample::{FrameResampler, ResampleError, frame_samples};

/// Packets of the peer's taken to fill one frame at most.
const MAX_PACKETS_PER_FRAME: usize = 8;

/// Why a bridged track's audio path could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BridgeAudioError {
    /// The codec could not be made.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The rates cannot be converted.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// The peer's audio as 20 ms frames at the bridge's rate.
pub struct PcmReceiver {
    jitter: JitterBuffer,
    decoder: AudioDecoder,
    resampler: FrameResampler,
    /// One codec frame (20 ms at the codec's rate).
    decoded: Vec<i16>,
    /// What a packet decoded to beyond one frame (longer packets), kept for the next ticks.
    spill: VecDeque<i16>,
    frame: Vec<i16>,
}

impl PcmReceiver {
    /// A receiver of `codec` packets of `ptime_ms` whose timestamps run on a `clock_rate`
    /// RTP clock, giving frames at `rate` Hz.
    pub fn new(
        codec: CodecKind,
        ptime_ms: u32,
        clock_rate: u32,
        rate: u32,
    ) -> Result<Self, BridgeAudioError> {
        let clock = codec.clock_rate();
        Ok(PcmReceiver {
            jitter: JitterBuffer::new(ptime_ms, clock_rate),
            decoder: AudioDecoder::new(codec)?,
            resampler: FrameResampler::new(clock, rate)?,
            decoded: vec![0; MAX_FRAME_SAMPLES],
            spill: VecDeque::with_capacity(MAX_FRAME_SAMPLES),
            frame: vec![0; frame_samples(rate)],
        })
    }

    /// A packet of the peer's audio arrived (decrypted): sequence number, timestamp, payload.
    pub fn on_packet(&mut self, seq: u16, timestamp: u32, payload: &[u8], now: Instant) {
        self.jitter.push(seq, timestamp, payload, now);
    }

    /// The jitter buffer's figures.
    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// The next 20 ms frame at the bridge's rate (call every 20 ms), or `None` before the
    /// first packet was played out.
    pub fn tick(&mut self, now: Instant) -> Option<&[i16]> {
        let n_codec = self.resampler.from_rate() as usize / 50;
        // Packets shorter than a frame (a peer's own packetization) are taken until the frame
        // is full; a few at most, so that a burst cannot hold the worker.
        for _ in 0..MAX_PACKETS_PER_FRAME {
            if self.spill.len() >= n_codec {
                break;
            }
            let got = match self.jitter.pop(now) {
                Playout::Waiting if self.spill.is_empty() => return None,
                Playout::Waiting => break,
                Playout::Packet(p) => self.decoder.decode(p, &mut self.decoded),
                Playout::Lost { next: Some(p) } => {
                    self.decoder.recover(p, &mut self.decoded[..n_codec])
                }
                Playout::Lost { next: None } => self.decoder.conceal(&mut self.decoded[..n_codec]),
                Playout::Dry => {
                    let n = self
                        .decoder
                        .conceal(&mut self.decoded[..n_codec - self.spill.len()])
                        .unwrap_or(0);
                    self.spill.extend(&self.decoded[..n]);
                    break;
                }
            };
            // A packet that does not decode is concealed like a lost one.
            let n = match got {
                Ok(n) => n,
                Err(_) => self
                    .decoder
                    .conceal(&mut self.decoded[..n_codec])
                    .unwrap_or(0),
            };
            self.spill.extend(&self.decoded[..n]);
        }
        while self.spill.len() < n_codec {
            self.spill.push_back(0);
        }
        let input = self.spill.make_contiguous();
        self.resampler
            .process(&input[..n_codec], &mut self.frame)
            .ok()?;
        self.spill.drain(..n_codec);
        Some(&self.frame)
    }
}

/// The bot's audio on its way to the peer: a queue of samples at the bridge's rate, taken 20
/// ms a packet time, resampled to the track's clock and encoded.
pub struct PcmSender {
    queue: VecDeque<i16>,
    /// Samples the queue holds at most.
    bound: usize,
    /// Marks and the count of samples queued in all before each.
    marks: VecDeque<(String, u64)>,
    queued_total: u64,
    sent_total: u64,
    resampler: FrameResampler,
    encoder: AudioEncoder,
    input: Vec<i16>,
    output: Vec<i16>,
    /// Samples the bot sent beyond the bound, dropped.
    pub dropped: u64,
}

impl PcmSender {
    /// A sender of audio at `rate` Hz to a `codec` track, queueing at most `max_ms` of it.
    pub fn new(codec: CodecKind, rate: u32, max_ms: u32) -> Result<Self, BridgeAudioError> {
        let bound = (u64::from(rate) * u64::from(max_ms) / 1000) as usize;
        Ok(PcmSender {
            queue: VecDeque::with_capacity(bound),
            bound,
            marks: VecDeque::new(),
            queued_total: 0,
            sent_total: 0,
            resampler: FrameResampler::new(rate, codec.clock_rate())?,
            encoder: AudioEncoder::new(codec)?,
            input: vec![0; frame_samples(rate)],
            output: vec![0; frame_samples(codec.clock_rate())],
            dropped: 0,
        })
    }

    /// Queues the bot's samples; those beyond the bound are dropped and counted. Returns how
    /// many were dropped.
    pub fn push(&mut self, samples: impl ExactSizeIterator<Item = i16>) -> usize {
        let room = self.bound - self.queue.len();
        let n = samples.len();
        let take = n.min(room);
        self.queue.extend(samples.take(take));
        self.queued_total += take as u64;
        let dropped = n - take;
        self.dropped += dropped as u64;
        dropped
    }

    /// A mark: told back (by [`Self::next_payload`]) once the audio queued before it is sent.
    pub fn mark(&mut self, name: String) {
        self.marks.push_back((name, self.queued_total));
    }

    /// Drops the queued audio (barge-in); the marks waiting are told back at once.
    pub fn clear(&mut self, passed: &mut Vec<String>) {
        self.sent_total += self.queue.len() as u64;
        self.queue.clear();
        passed.extend(self.marks.drain(..).map(|(name, _)| name));
    }

    /// A packet of silence in the track's codec, encoded into `payload` (for packet times
    /// when the bot has nothing queued).
    pub fn silence(&mut self, payload: &mut [u8]) -> Result<usize, BridgeAudioError> {
        self.output.fill(0);
        Ok(self.encoder.encode(&self.output, payload)?)
    }

    /// Samples waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The next packet's payload, encoded into `payload`, if the bot's audio fills (part of)
    /// 20 ms, padded with silence; `None` when nothing waits. Marks whose audio has now been
    /// sent are added to `passed`.
    pub fn next_payload(
        &mut self,
        payload: &mut [u8],
        passed: &mut Vec<String>,
    ) -> Result<Option<usize>, BridgeAudioError> {
        if self.queue.is_empty() {
            while self.marks.front().is_some_and(|m| m.1 <= self.sent_total) {
                passed.extend(self.marks.pop_front().map(|m| m.0));
            }
            return Ok(None);
        }
        let n = self.input.len().min(self.queue.len());
        for (slot, s) in self.input.iter_mut().zip(self.queue.drain(..n)) {
            *slot = s;
        }
        self.input[n..].fill(0);
        self.sent_total += n as u64;
        self.resampler.process(&self.input, &mut self.output)?;
        let len = self.encoder.encode(&self.output, payload)?;
        while self.marks.front().is_some_and(|m| m.1 <= self.sent_total) {
            passed.extend(self.marks.pop_front().map(|m| m.0));
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tone(freq: f64, rate: u32, n: usize, phase: usize) -> Vec<i16> {
        (phase..phase + n)
            .map(|i| {
                (8_000.0 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn the_peers_opus_becomes_frames_at_the_bridge_rate() {
        let t0 = Instant::now();
        let mut enc = AudioEncoder::new(CodecKind::Opus).unwrap();
        let mut rx = PcmReceiver::new(CodecKind::Opus, 20, 48_000, 8_000).unwrap();
        let mut frames = 0;
        for k in 0..50u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(k));
            let mut p = [0u8; 1500];
            let n = enc
                .encode(&tone(440.0, 48_000, 960, usize::from(k) * 960), &mut p)
                .unwrap();
            if k != 20 {
                rx.on_packet(k, u32::from(k) * 960, &p[..n], now);
            }
            if let Some(frame) = rx.tick(now + Duration::from_millis(20)) {
                assert_eq!(frame.len(), 160);
                frames += 1;
            }
        }
        assert!(frames >= 48, "{frames} frames");
        let s = rx.stats();
        assert_eq!((s.lost, s.recovered), (1, 1), "{s:?}");
    }

    #[test]
    fn the_bots_audio_is_paced_bounded_cleared_and_marked() {
        let mut tx = PcmSender::new(CodecKind::Pcmu, 8_000, 100).unwrap();
        let mut passed = Vec::new();
        let mut payload = [0u8; 1500];
        // 100 ms queued at most: 400 of 1,200 samples are dropped.
        assert_eq!(tx.push(tone(440.0, 8_000, 1_200, 0).into_iter()), 400);
        tx.mark("after-first".into());
        assert_eq!(tx.queued(), 800);
        // Five packets of 160 samples empty it; the mark is told with the last.
        for k in 0..5 {
            let n = tx.next_payload(&mut payload, &mut passed).unwrap();
            assert_eq!(n, Some(160), "packet {k}");
            assert_eq!(passed.is_empty(), k < 4, "packet {k}: {passed:?}");
        }
        assert_eq!(passed, ["after-first"]);
        assert_eq!(tx.next_payload(&mut payload, &mut passed).unwrap(), None);
        // Barge-in: queued audio is gone at once, its mark told.
        passed.clear();
        tx.push(vec![1i16; 500].into_iter());
        tx.mark("m2".into());
        tx.clear(&mut passed);
        assert_eq!(tx.queued(), 0);
        assert_eq!(passed, ["m2"]);
        // A part of a packet goes out padded.
        tx.push(vec![1i16; 50].into_iter());
        assert_eq!(
            tx.next_payload(&mut payload, &mut passed).unwrap(),
            Some(160)
        );
        assert_eq!(tx.dropped, 400);
    }
}
