//! Audio codecs of tracks whose audio srtpd must hear or make as PCM (a bot bridge, WAV
//! files): Opus through libopus, and G.711 µ-law (PCMU) and A-law (PCMA). Everything works on
//! caller-owned buffers: decoding or encoding a frame allocates nothing.

use serde::{Deserialize, Serialize};

/// The samples of the longest frame a decoder returns: 120 ms at 48 kHz (Opus' longest).
pub const MAX_FRAME_SAMPLES: usize = 5760;

/// The Opus packet for 20 ms of silence (RFC 6716: TOC 0xf8, CELT FB 20 ms, one frame).
pub const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// The longest packet time of a G.711 silence packet, in samples at 8 kHz (120 ms).
const G711_SILENCE_SAMPLES: usize = 960;

/// G.711 µ-law's code for a zero sample, a packet's worth of it.
static PCMU_SILENCE: [u8; G711_SILENCE_SAMPLES] = [0xff; G711_SILENCE_SAMPLES];

/// G.711 A-law's code for a zero sample, a packet's worth of it.
static PCMA_SILENCE: [u8; G711_SILENCE_SAMPLES] = [0xd5; G711_SILENCE_SAMPLES];

/// A track's audio codec, as `audio.codec` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodecKind {
    /// Opus (RFC 6716, RTP payload format RFC 7587): 48 kHz RTP clock.
    Opus,
    /// G.711 µ-law, static payload type 0: 8 kHz, one byte a sample.
    Pcmu,
    /// G.711 A-law, static payload type 8: 8 kHz, one byte a sample.
    Pcma,
}

impl CodecKind {
    /// The codec a payload type implies when `audio.codec` is not given: the static types
    /// of G.711 (RFC 3551), otherwise Opus (dynamic types).
    pub fn for_payload_type(payload_type: u8) -> Self {
        match payload_type {
            0 => CodecKind::Pcmu,
            8 => CodecKind::Pcma,
            _ => CodecKind::Opus,
        }
    }

    /// The RTP clock rate, which is also the rate of the PCM the codec takes and gives.
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Opus => 48_000,
            CodecKind::Pcmu | CodecKind::Pcma => 8_000,
        }
    }

    /// The payload of one packet of silence `ptime_ms` long (at most 120 ms): for Opus the
    /// 20 ms silence frame, which decoders stretch to the gap; for G.711, a zero sample's
    /// code for each sample.
    pub fn silence(self, ptime_ms: u32) -> &'static [u8] {
        let samples = (ptime_ms as usize * 8).min(G711_SILENCE_SAMPLES);
        match self {
            CodecKind::Opus => &OPUS_SILENCE,
            CodecKind::Pcmu => &PCMU_SILENCE[..samples],
            CodecKind::Pcma => &PCMA_SILENCE[..samples],
        }
    }

    /// Its name, as `audio.codec` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Opus => "opus",
            CodecKind::Pcmu => "pcmu",
            CodecKind::Pcma => "pcma",
        }
    }
}

/// What a codec refused.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// libopus refused (a malformed packet, a buffer too small, an unsupported setting).
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// The output buffer has no room for what the input makes.
    #[error("an output buffer of {have} samples or bytes, {need} needed")]
    BufferTooSmall {
        /// Its size.
        have: usize,
        /// What was needed.
        need: usize,
    },
}

/// Turns a track's RTP payloads into mono 16-bit PCM at the codec's clock rate.
pub enum AudioDecoder {
    /// A libopus decoder (a stereo stream is mixed down by libopus).
    Opus(Box<opus::Decoder>),
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl AudioDecoder {
    /// A decoder for `kind`.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Opus => AudioDecoder::Opus(Box::new(opus::Decoder::new(
                kind.clock_rate(),
                opus::Channels::Mono,
            )?)),
            CodecKind::Pcmu => AudioDecoder::Pcmu,
            CodecKind::Pcma => AudioDecoder::Pcma,
        })
    }

    /// Decodes one payload into `out`; returns the samples written.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            AudioDecoder::Opus(d) => Ok(d.decode(payload, out, false)?),
            AudioDecoder::Pcmu => expand(payload, out, audio_codec_algorithms::decode_ulaw),
            AudioDecoder::Pcma => expand(payload, out, audio_codec_algorithms::decode_alaw),
        }
    }

    /// Fills `out` (one frame's worth) for a packet that never came: Opus' loss concealment
    /// continues the signal; G.711 has none, so the frame is silence. Returns `out.len()`.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            AudioDecoder::Opus(d) => Ok(d.decode(&[], out, false)?),
            AudioDecoder::Pcmu | AudioDecoder::Pcma => {
                out.fill(0);
                Ok(out.len())
            }
        }
    }

    /// Rebuilds a lost frame (`out.len()` samples) from the forward error correction data
    /// `next` (the payload after the loss) carries; concealment where there is none.
    pub fn recover(&mut self, next: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            AudioDecoder::Opus(d) => Ok(d.decode(next, out, true)?),
            AudioDecoder::Pcmu | AudioDecoder::Pcma => self.conceal(out),
        }
    }
}

/// Turns mono 16-bit PCM at the codec's clock rate into RTP payloads.
pub enum AudioEncoder {
    /// A libopus encoder set up for speech, with in-band FEC.
    Opus(Box<opus::Encoder>),
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl AudioEncoder {
    /// An encoder for `kind`.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Opus => {
                let mut e = opus::Encoder::new(
                    kind.clock_rate(),
                    opus::Channels::Mono,
                    opus::Application::Voip,
                )?;
                // Peers that lose a packet can rebuild it from the next one.
                e.set_inband_fec(true)?;
                e.set_packet_loss_perc(5)?;
                AudioEncoder::Opus(Box::new(e))
            }
            CodecKind::Pcmu => AudioEncoder::Pcmu,
            CodecKind::Pcma => AudioEncoder::Pcma,
        })
    }

    /// Encodes one frame (for Opus 2.5, 5, 10, 20, 40 or 60 ms of samples) into `out`;
    /// returns the payload's length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        match self {
            AudioEncoder::Opus(e) => Ok(e.encode(pcm, out)?),
            AudioEncoder::Pcmu => compress(pcm, out, audio_codec_algorithms::encode_ulaw),
            AudioEncoder::Pcma => compress(pcm, out, audio_codec_algorithms::encode_alaw),
        }
    }
}

/// G.711 decoding: a sample per byte.
fn expand(payload: &[u8], out: &mut [i16], law: fn(u8) -> i16) -> Result<usize, CodecError> {
    let have = out.len();
    let out = out
        .get_mut(..payload.len())
        .ok_or(CodecError::BufferTooSmall {
            have,
            need: payload.len(),
        })?;
    for (o, &b) in out.iter_mut().zip(payload) {
        *o = law(b);
    }
    Ok(payload.len())
}

/// G.711 encoding: a byte per sample.
fn compress(pcm: &[i16], out: &mut [u8], law: fn(i16) -> u8) -> Result<usize, CodecError> {
    let have = out.len();
    let out = out.get_mut(..pcm.len()).ok_or(CodecError::BufferTooSmall {
        have,
        need: pcm.len(),
    })?;
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = law(s);
    }
    Ok(pcm.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` samples of a `freq` Hz sine at `rate`, amplitude 10,000.
    fn tone(freq: f64, rate: u32, n: usize, phase: usize) -> Vec<i16> {
        (phase..phase + n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (10_000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    /// The correlation of `a` and `b` (1 for the same shape).
    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn payload_types_imply_codecs_and_clocks() {
        assert_eq!(CodecKind::for_payload_type(0), CodecKind::Pcmu);
        assert_eq!(CodecKind::for_payload_type(8), CodecKind::Pcma);
        assert_eq!(CodecKind::for_payload_type(111), CodecKind::Opus);
        assert_eq!(CodecKind::Pcma.clock_rate(), 8000);
        assert_eq!(CodecKind::Opus.clock_rate(), 48000);
        let kind: CodecKind = serde_json::from_str("\"pcmu\"").unwrap();
        assert_eq!(kind, CodecKind::Pcmu);
        assert!(serde_json::from_str::<CodecKind>("\"g729\"").is_err());
    }

    #[test]
    fn g711_known_codes_and_round_trips() {
        // G.711's own fixed points: µ-law 0xff and A-law 0xd5 are (near) zero; full scale.
        let mut out = [0i16; 4];
        let mut d = AudioDecoder::new(CodecKind::Pcmu).unwrap();
        assert_eq!(d.decode(&[0xff, 0x7f, 0x00, 0x80], &mut out).unwrap(), 4);
        assert_eq!(out, [0, 0, -32124, 32124]);
        let mut d = AudioDecoder::new(CodecKind::Pcma).unwrap();
        d.decode(&[0xd5, 0x55, 0x2a, 0xaa], &mut out).unwrap();
        assert_eq!(out, [8, -8, -32256, 32256]);
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let pcm = tone(440.0, 8000, 160, 0);
            let mut enc = AudioEncoder::new(kind).unwrap();
            let mut dec = AudioDecoder::new(kind).unwrap();
            let mut payload = [0u8; 160];
            assert_eq!(enc.encode(&pcm, &mut payload).unwrap(), 160);
            let mut back = [0i16; 160];
            assert_eq!(dec.decode(&payload, &mut back).unwrap(), 160);
            // Companding keeps each sample within half a step: 8 near zero (A-law), 1/32 of
            // the value in the top segments.
            for (a, b) in pcm.iter().zip(&back) {
                assert!(
                    (i32::from(*a) - i32::from(*b)).abs() <= 8 + i32::from(*a).abs() / 32,
                    "{kind:?}: {a} vs {b}"
                );
            }
            assert!(matches!(
                dec.decode(&payload, &mut [0i16; 10]),
                Err(CodecError::BufferTooSmall {
                    have: 10,
                    need: 160
                })
            ));
        }
    }

    #[test]
    fn opus_round_trip_keeps_a_tone_and_conceals_a_loss() {
        let mut enc = AudioEncoder::new(CodecKind::Opus).unwrap();
        let mut dec = AudioDecoder::new(CodecKind::Opus).unwrap();
        let mut payloads = Vec::new();
        for k in 0..20 {
            let mut p = [0u8; 1500];
            let n = enc
                .encode(&tone(440.0, 48000, 960, k * 960), &mut p)
                .unwrap();
            assert!(n > 1 && n < 400, "{n} bytes");
            payloads.push(p[..n].to_vec());
        }
        let mut out = vec![0i16; MAX_FRAME_SAMPLES];
        let mut decoded = Vec::new();
        for p in &payloads[..10] {
            let n = dec.decode(p, &mut out).unwrap();
            assert_eq!(n, 960);
            decoded.extend_from_slice(&out[..n]);
        }
        // The codec's delay is a few ms: compare the last frame against the tone, shifted.
        let best = (0..480)
            .map(|shift| {
                correlation(
                    &decoded[9 * 960..],
                    &tone(440.0, 48000, 960, 9 * 960 - shift),
                )
            })
            .fold(f64::MIN, f64::max);
        assert!(best > 0.9, "correlation {best}");
        // Frame 10 is lost: FEC in frame 11 rebuilds it, and concealment fills a frame.
        assert_eq!(dec.recover(&payloads[11], &mut out[..960]).unwrap(), 960);
        assert!(
            out[..960].iter().any(|&s| s.abs() > 1000),
            "recovered audio"
        );
        assert_eq!(dec.conceal(&mut out[..960]).unwrap(), 960);
        // A code 3 packet of zero frames is malformed.
        assert!(matches!(
            dec.decode(&[0x03, 0x00], &mut out),
            Err(CodecError::Opus(_))
        ));
    }
}
