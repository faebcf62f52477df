//! The clip a `file` source plays, whatever the file holds (told by its first bytes), in the
//! codec of the track that plays it: an Ogg Opus file on an Opus track plays as it is; any
//! other pairing (WAV, or Ogg Opus on a G.711 track) is decoded, resampled and encoded to
//! 20 ms packets once, when loaded, so that playback is the same pacing of packets either way.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::clip::AudioClip;
use super::codec::{AudioDecoder, AudioEncoder, CodecKind, MAX_FRAME_SAMPLES};
use super::ogg_opus::{OggOpusError, open_regular};
use super::resample::{FrameResampler, frame_samples};
use super::wav::{WavClip, WavError};

/// Why a file cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum FileClipError {
    /// An Ogg Opus file that cannot be played (or no file at all).
    #[error(transparent)]
    Ogg(#[from] OggOpusError),
    /// A WAV file that cannot be played.
    #[error(transparent)]
    Wav(#[from] WavError),
    /// Neither kind.
    #[error("{path}: neither Ogg Opus nor WAV")]
    Unknown {
        /// The file.
        path: String,
    },
    /// Converting the file's audio to the track's codec failed.
    #[error("{path}: {reason}")]
    Encode {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Loads the clip at `path` (Ogg Opus, `OggS`, or WAV, `RIFF`, by its first bytes) as
/// packets of `codec`.
pub fn load(path: &Path, codec: CodecKind) -> Result<AudioClip, FileClipError> {
    let name = path.display().to_string();
    let io = |source| OggOpusError::Io {
        path: name.clone(),
        source,
    };
    let file = open_regular(path, std::fs::OpenOptions::new().read(true))?;
    let mut reader = std::io::BufReader::new(file);
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(io)?;
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    let encode = |reason: String| FileClipError::Encode {
        path: name.clone(),
        reason,
    };
    match &magic[..got] {
        b"OggS" => {
            let clip = AudioClip::read_ogg_opus(reader, &name)?;
            if codec == CodecKind::Opus {
                Ok(clip)
            } else {
                transcode(&clip, codec).map_err(encode)
            }
        }
        b"RIFF" => {
            let wav = WavClip::read(reader, &name)?;
            encode_pcm(&wav.samples, wav.rate, codec).map_err(encode)
        }
        _ => Err(FileClipError::Unknown { path: name }),
    }
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// `clip`'s audio decoded and encoded again as `codec`.
fn transcode(clip: &AudioClip, codec: CodecKind) -> Result<AudioClip, String> {
    let from = clip.codec.clock_rate();
    let mut decoder = AudioDecoder::new(clip.codec).map_err(|e| e.to_string())?;
    let mut pcm = vec![0i16; MAX_FRAME_SAMPLES];
    let mut encoder = ClipEncoder::new(from, codec)?;
    for (packet, _) in &clip.packets {
        let n = decoder
            .decode(packet, &mut pcm)
            .map_err(|e| e.to_string())?;
        encoder.push(&pcm[..n])?;
    }
    encoder.finish()
}

/// Mono PCM at `rate` as 20 ms packets of `codec` (the last frame padded with silence).
pub fn encode_pcm(samples: &[i16], rate: u32, codec: CodecKind) -> Result<AudioClip, String> {
    let mut encoder = ClipEncoder::new(rate, codec)?;
    encoder.push(samples)?;
    encoder.finish()
}

/// PCM in, at any rate and in pieces of any length; 20 ms packets of a codec out.
struct ClipEncoder {
    codec: CodecKind,
    resampler: FrameResampler,
    encoder: AudioEncoder,
    /// Input not yet a whole frame.
    input: Vec<i16>,
    n_in: usize,
    output: Vec<i16>,
    /// Resampled samples not yet a whole packet.
    pending: Vec<i16>,
    /// Samples of the resampler's delay still to be dropped from its output.
    skip: usize,
    payload: Vec<u8>,
    packets: Vec<(Vec<u8>, u32)>,
}

impl ClipEncoder {
    fn new(rate: u32, codec: CodecKind) -> Result<Self, String> {
        let to = codec.clock_rate();
        let resampler = FrameResampler::new(rate, to).map_err(|e| e.to_string())?;
        let n_in = frame_samples(rate);
        Ok(ClipEncoder {
            codec,
            skip: resampler.delay(),
            resampler,
            encoder: AudioEncoder::new(codec).map_err(|e| e.to_string())?,
            input: Vec::with_capacity(2 * n_in),
            n_in,
            output: vec![0; frame_samples(to)],
            pending: Vec::with_capacity(2 * frame_samples(to)),
            payload: vec![0; 1_500],
            packets: Vec::new(),
        })
    }

    fn push(&mut self, mut samples: &[i16]) -> Result<(), String> {
        while !samples.is_empty() {
            let take = (self.n_in - self.input.len()).min(samples.len());
            self.input.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.input.len() == self.n_in {
                self.frame()?;
            }
        }
        Ok(())
    }

    /// Resamples the whole frame in `input` and encodes every whole packet it completes.
    fn frame(&mut self) -> Result<(), String> {
        self.resampler
            .process(&self.input, &mut self.output)
            .map_err(|e| e.to_string())?;
        self.input.clear();
        let from = self.skip.min(self.output.len());
        self.skip -= from;
        self.pending.extend_from_slice(&self.output[from..]);
        let n_out = self.output.len();
        while self.pending.len() >= n_out {
            let n = self
                .encoder
                .encode(&self.pending[..n_out], &mut self.payload)
                .map_err(|e| e.to_string())?;
            self.packets.push((self.payload[..n].to_vec(), 960));
            self.pending.drain(..n_out);
        }
        Ok(())
    }

    /// The packets: the last frame padded with silence, and the resampler's delay flushed by
    /// one more frame of it.
    fn finish(mut self) -> Result<AudioClip, String> {
        let partial = !self.input.is_empty();
        if partial {
            self.input.resize(self.n_in, 0);
            self.frame()?;
        }
        if self.resampler.delay() > 0 {
            self.input.resize(self.n_in, 0);
            self.frame()?;
        }
        if self.packets.is_empty() {
            return Err("no audio".to_owned());
        }
        Ok(AudioClip {
            codec: self.codec,
            channels: 1,
            packets: self.packets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("a.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&wav, spec).unwrap();
        for i in 0..8_000 {
            w.write_sample(((i as f64 * 0.3).sin() * 8_000.0) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
        let clip = load(&wav, CodecKind::Opus).unwrap();
        // One second: 50 packets of 20 ms, and the frame that carries the filter's delay.
        assert!(
            (50..=51).contains(&clip.packets.len()),
            "{}",
            clip.packets.len()
        );
        assert!(clip.packets.iter().all(|(_, n)| *n == 960));
        assert_eq!(clip.channels, 1);

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        assert_eq!(
            load(&text, CodecKind::Opus).unwrap_err().to_string(),
            format!("{}: neither Ogg Opus nor WAV", text.display())
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            load(&empty, CodecKind::Opus),
            Err(FileClipError::Unknown { .. })
        ));
        let bad_wav = dir.path().join("b.wav");
        std::fs::write(&bad_wav, b"RIFF\x04\x00\x00\x00WAVE").unwrap();
        assert!(
            load(&bad_wav, CodecKind::Opus)
                .unwrap_err()
                .to_string()
                .contains("not a WAV file")
        );
        assert!(matches!(
            load(&dir.path().join("missing.wav"), CodecKind::Opus),
            Err(FileClipError::Ogg(OggOpusError::Io { .. }))
        ));
    }

    #[test]
    fn g711_tracks_get_files_transcoded_to_their_codec() {
        let dir = tempfile::tempdir().unwrap();
        let tone: Vec<i16> = (0..16_000)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16_000.0).sin() * 9_000.0) as i16
            })
            .collect();
        let wav = dir.path().join("t.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&wav, spec).unwrap();
        tone.iter().for_each(|&s| w.write_sample(s).unwrap());
        w.finalize().unwrap();
        let pcmu = load(&wav, CodecKind::Pcmu).unwrap();
        assert_eq!(pcmu.codec, CodecKind::Pcmu);
        assert!(
            (50..=51).contains(&pcmu.packets.len()),
            "{}",
            pcmu.packets.len()
        );
        assert!(
            pcmu.packets
                .iter()
                .all(|(p, n)| p.len() == 160 && *n == 960)
        );

        // The same audio as Ogg Opus, played on a PCMA track.
        let opus = encode_pcm(&tone, 16_000, CodecKind::Opus).unwrap();
        let ogg = dir.path().join("t.opus");
        let mut rec = crate::media::OggOpusRecorder::create(&ogg, 1).unwrap();
        opus.packets
            .iter()
            .for_each(|(p, _)| rec.write(p, 0).unwrap());
        rec.finish().unwrap();
        let pcma = load(&ogg, CodecKind::Pcma).unwrap();
        assert_eq!(pcma.codec, CodecKind::Pcma);
        assert!(pcma.packets.iter().all(|(p, _)| p.len() == 160));
        // Mid-clip, the tone is there: loud samples, crossing zero 880 times a second.
        let mut decoder = AudioDecoder::new(CodecKind::Pcma).unwrap();
        let mut pcm = vec![0i16; 160];
        let mut mid = Vec::new();
        for (p, _) in &pcma.packets[10..40] {
            decoder.decode(p, &mut pcm).unwrap();
            mid.extend_from_slice(&pcm);
        }
        let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        let seconds = mid.len() as f64 / 8_000.0;
        assert!(
            (crossings as f64 / seconds - 880.0).abs() < 20.0,
            "{crossings}"
        );
        assert!(mid.iter().any(|s| s.abs() > 6_000));
    }
}
