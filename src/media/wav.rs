//! WAV files (RIFF, 16-bit PCM) through hound: a clip read whole for playback (mono, stereo
//! mixed down, any rate), and the header a recording starts with and the sizes it ends with.

use std::io::{Read, Seek};
use std::path::Path;

use super::ogg_opus::{OggOpusError, open_regular};

/// The longest clip loaded: 10 minutes, in samples a channel at the file's rate (a longer
/// file is refused rather than held in memory).
pub const MAX_CLIP_SECONDS: u32 = 600;

/// Why a WAV file cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// It cannot be opened or read, or is not a regular file.
    #[error(transparent)]
    File(#[from] OggOpusError),
    /// Not a WAV file, or a malformed one.
    #[error("{path}: not a WAV file ({reason})")]
    NotWav {
        /// The file.
        path: String,
        /// What the reader said.
        reason: String,
    },
    /// A WAV file of a kind srtpd does not play.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file.
        path: String,
        /// What is not supported.
        reason: String,
    },
}

/// A WAV clip in memory: mono 16-bit samples at the file's rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavClip {
    /// Samples a second.
    pub rate: u32,
    /// The samples (stereo files mixed down).
    pub samples: Vec<i16>,
}

impl WavClip {
    /// Loads a whole WAV file.
    pub fn load(path: &Path) -> Result<WavClip, WavError> {
        let file = open_regular(path, std::fs::OpenOptions::new().read(true))?;
        Self::read(std::io::BufReader::new(file), &path.display().to_string())
    }

    /// Reads a whole WAV stream from `input`, called `name` in errors: 16-bit integer PCM,
    /// one or two channels, a rate that makes whole 20 ms frames, at most
    /// [`MAX_CLIP_SECONDS`].
    pub fn read<R: Read + Seek>(input: R, name: &str) -> Result<WavClip, WavError> {
        let unsupported = |reason: String| WavError::Unsupported {
            path: name.to_owned(),
            reason,
        };
        let not_wav = |e: hound::Error| WavError::NotWav {
            path: name.to_owned(),
            reason: e.to_string(),
        };
        let mut reader = hound::WavReader::new(input).map_err(not_wav)?;
        let spec = reader.spec();
        if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
            return Err(unsupported(format!(
                "{}-bit {:?} samples (16-bit integer PCM is played)",
                spec.bits_per_sample, spec.sample_format
            )));
        }
        if !(1..=2).contains(&spec.channels) {
            return Err(unsupported(format!(
                "{} channels (mono or stereo are played)",
                spec.channels
            )));
        }
        if !(8_000..=48_000).contains(&spec.sample_rate) || spec.sample_rate % 50 != 0 {
            return Err(unsupported(format!(
                "{} Hz (8,000 to 48,000 Hz, a multiple of 50, is played)",
                spec.sample_rate
            )));
        }
        let frames = reader.duration();
        if frames > MAX_CLIP_SECONDS * spec.sample_rate {
            return Err(unsupported(format!(
                "{} s long (at most {MAX_CLIP_SECONDS} s is played)",
                frames / spec.sample_rate
            )));
        }
        let channels = usize::from(spec.channels);
        let mut samples = Vec::with_capacity(frames as usize);
        let mut frame = [0i32; 2];
        let mut filled = 0;
        for s in reader.samples::<i16>() {
            frame[filled] = i32::from(s.map_err(not_wav)?);
            filled += 1;
            if filled == channels {
                let sum: i32 = frame[..channels].iter().sum();
                samples.push((sum / channels as i32) as i16);
                filled = 0;
            }
        }
        if samples.is_empty() {
            return Err(unsupported("no samples".to_owned()));
        }
        Ok(WavClip {
            rate: spec.sample_rate,
            samples,
        })
    }
}

/// The header a mono 16-bit recording at `rate` starts with, its sizes left open (as for a
/// stream of unknown length) until [`finished_sizes`] fills them in.
pub fn recording_header(rate: u32) -> Vec<u8> {
    hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
    .into_header_for_infinite_file()
}

/// The bytes to write at which offsets of a recording that started with
/// [`recording_header`] once `data_bytes` bytes of samples followed it: the RIFF chunk's
/// size and the data chunk's.
pub fn finished_sizes(header_len: usize, data_bytes: u32) -> [(u64, [u8; 4]); 2] {
    let riff = (header_len as u32 - 8).saturating_add(data_bytes);
    [
        (4, riff.to_le_bytes()),
        (header_len as u64 - 4, data_bytes.to_le_bytes()),
    ]
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        bytes.into_inner()
    }

    fn spec(channels: u16, rate: u32, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn mono_and_stereo_clips_load_as_mono() {
        let clip =
            WavClip::read(Cursor::new(wav(spec(1, 16_000, 16), &[1, -2, 3])), "m.wav").unwrap();
        assert_eq!(
            clip,
            WavClip {
                rate: 16_000,
                samples: vec![1, -2, 3]
            }
        );
        let clip = WavClip::read(
            Cursor::new(wav(spec(2, 44_100, 16), &[100, 300, -32768, -32768, 7, -7])),
            "s.wav",
        )
        .unwrap();
        assert_eq!(clip.samples, vec![200, -32768, 0]);
        assert_eq!(clip.rate, 44_100);
    }

    #[test]
    fn what_is_not_played_is_refused_by_name() {
        let refused = |bytes: Vec<u8>| {
            WavClip::read(Cursor::new(bytes), "x.wav")
                .unwrap_err()
                .to_string()
        };
        assert!(refused(b"OggS\0\0\0\0".to_vec()).contains("x.wav: not a WAV file"));
        assert!(refused(wav(spec(1, 8_000, 8), &[1, 2])).contains("8-bit"));
        assert!(refused(wav(spec(3, 8_000, 16), &[1, 2, 3])).contains("3 channels"));
        assert!(refused(wav(spec(1, 11_025, 16), &[1])).contains("11025 Hz"));
        assert!(refused(wav(spec(1, 8_000, 16), &[])).contains("no samples"));
        let mut truncated = wav(spec(1, 8_000, 16), &[1; 100]);
        truncated.truncate(60);
        assert!(WavClip::read(Cursor::new(truncated), "t.wav").is_err());
    }

    #[test]
    fn a_recording_is_a_valid_file_once_its_sizes_are_written() {
        let mut file = recording_header(16_000);
        let header_len = file.len();
        let samples: Vec<i16> = (0..320).map(|i| (i * 50) as i16).collect();
        for s in &samples {
            file.extend_from_slice(&s.to_le_bytes());
        }
        for (at, bytes) in finished_sizes(header_len, 640) {
            file[at as usize..at as usize + 4].copy_from_slice(&bytes);
        }
        let mut r = hound::WavReader::new(Cursor::new(file)).unwrap();
        assert_eq!(r.spec(), spec(1, 16_000, 16));
        assert_eq!(r.duration(), 320);
        let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back, samples);
    }
}
