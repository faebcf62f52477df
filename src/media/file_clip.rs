//! The clip a `file` source plays, whatever the file holds, told by its first bytes: an Ogg
//! Opus file plays as it is; a WAV file is resampled to 48 kHz and encoded to 20 ms Opus
//! packets once, when loaded, so that playback is the same pacing of packets either way.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::codec::{AudioEncoder, CodecError, CodecKind};
use super::ogg_opus::{OggOpusError, OpusClip, open_regular};
use super::opus::OpusHead;
use super::resample::{FrameResampler, ResampleError, frame_samples};
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
    /// Encoding the WAV file's audio failed.
    #[error("{path}: {reason}")]
    Encode {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Loads the clip at `path`: Ogg Opus (`OggS`) or WAV (`RIFF`), by its first bytes.
pub fn load(path: &Path) -> Result<OpusClip, FileClipError> {
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
    match &magic[..got] {
        b"OggS" => Ok(OpusClip::read(reader, &name)?),
        b"RIFF" => {
            let wav = WavClip::read(reader, &name)?;
            opus_clip(&wav).map_err(|reason| FileClipError::Encode { path: name, reason })
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

/// `wav`'s audio as 20 ms Opus packets at 48 kHz (the last frame padded with silence).
pub fn opus_clip(wav: &WavClip) -> Result<OpusClip, String> {
    let to = CodecKind::Opus.clock_rate();
    let mut resampler =
        FrameResampler::new(wav.rate, to).map_err(|e: ResampleError| e.to_string())?;
    let mut encoder = AudioEncoder::new(CodecKind::Opus).map_err(|e: CodecError| e.to_string())?;
    let (n_in, n_out) = (frame_samples(wav.rate), frame_samples(to));
    let mut input = vec![0i16; n_in];
    let mut output = vec![0i16; n_out];
    let mut payload = [0u8; 1_500];
    let mut packets = Vec::with_capacity(wav.samples.len() / n_in + 2);
    // The resampler's delay is made up by one more frame of silence at the end.
    let frames = wav.samples.len().div_ceil(n_in) + 1;
    let skip = resampler.delay();
    let mut pending: Vec<i16> = Vec::with_capacity(2 * n_out);
    for k in 0..frames {
        let chunk = wav.samples.get(k * n_in..).unwrap_or(&[]);
        let take = chunk.len().min(n_in);
        input[..take].copy_from_slice(&chunk[..take]);
        input[take..].fill(0);
        resampler
            .process(&input, &mut output)
            .map_err(|e| e.to_string())?;
        let from = if k == 0 { skip.min(n_out) } else { 0 };
        pending.extend_from_slice(&output[from..]);
        while pending.len() >= n_out {
            let n = encoder
                .encode(&pending[..n_out], &mut payload)
                .map_err(|e| e.to_string())?;
            packets.push((payload[..n].to_vec(), n_out as u32));
            pending.drain(..n_out);
        }
    }
    if packets.is_empty() {
        return Err("no audio".to_owned());
    }
    Ok(OpusClip {
        head: OpusHead {
            channels: 1,
            pre_skip: 0,
            input_rate: wav.rate,
        },
        packets,
    })
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
        let clip = load(&wav).unwrap();
        // One second: 50 packets of 20 ms, and the frame that carries the filter's delay.
        assert!(
            (50..=51).contains(&clip.packets.len()),
            "{}",
            clip.packets.len()
        );
        assert!(clip.packets.iter().all(|(_, n)| *n == 960));
        assert_eq!(clip.head.channels, 1);

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        assert_eq!(
            load(&text).unwrap_err().to_string(),
            format!("{}: neither Ogg Opus nor WAV", text.display())
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(load(&empty), Err(FileClipError::Unknown { .. })));
        let bad_wav = dir.path().join("b.wav");
        std::fs::write(&bad_wav, b"RIFF\x04\x00\x00\x00WAVE").unwrap();
        assert!(
            load(&bad_wav)
                .unwrap_err()
                .to_string()
                .contains("not a WAV file")
        );
        assert!(matches!(
            load(&dir.path().join("missing.wav")),
            Err(FileClipError::Ogg(OggOpusError::Io { .. }))
        ));
    }
}
