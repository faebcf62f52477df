//! Where a track's received media goes, besides a local RTP address (which the endpoint sends
//! to from the track's local port): a recording, Ogg Opus or WAV, kept as bytes in memory
//! until the daemon's file writer takes them, so that no worker ever waits on a disk.

use std::path::Path;

use crate::media::OggOpusRecorder;
use crate::media::codec::{AudioDecoder, CodecKind, MAX_FRAME_SAMPLES};
use crate::media::opus::packet_samples;
use crate::media::wav;
use crate::rtp::RtpPacket;

/// Names a file the daemon's file writer holds open; the endpoint only ever hands it bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// Bytes for the file writer: appended to `file`, which is closed after them if `last`.
#[derive(Debug, PartialEq, Eq)]
pub struct FileWrite {
    /// The file.
    pub file: FileId,
    /// What to append.
    pub data: Vec<u8>,
    /// Whether the recording ended with these bytes.
    pub last: bool,
    /// Bytes written over what is at these offsets, after `data` (a WAV header's sizes, once
    /// they are known).
    pub patches: Vec<(u64, [u8; 4])>,
}

impl FileWrite {
    /// The last (empty) write of a file that will get nothing more.
    pub fn close(file: FileId) -> Self {
        FileWrite {
            file,
            data: Vec::new(),
            last: true,
            patches: Vec::new(),
        }
    }
}

/// What a recording file holds, told by its name: `.wav` is WAV, anything else Ogg Opus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingFormat {
    /// The received Opus packets, as they came, in an Ogg Opus stream (RFC 7845).
    OggOpus,
    /// The received audio decoded to mono 16-bit PCM at the codec's rate.
    Wav,
}

impl RecordingFormat {
    /// The format a recording at `path` gets.
    pub fn for_path(path: &Path) -> Self {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("wav") => RecordingFormat::Wav,
            _ => RecordingFormat::OggOpus,
        }
    }

    /// Whether a track of `codec` (`None`: video) can be recorded so; if not, why.
    pub fn check(self, codec: Option<CodecKind>) -> Result<(), String> {
        match (self, codec) {
            (RecordingFormat::OggOpus, Some(CodecKind::Opus) | None) => Ok(()),
            (RecordingFormat::OggOpus, Some(other)) => Err(format!(
                "an Ogg Opus recording needs an Opus track, this one is {}: name a .wav file",
                other.name()
            )),
            (RecordingFormat::Wav, Some(_)) => Ok(()),
            (RecordingFormat::Wav, None) => Err("video cannot be recorded as WAV".to_owned()),
        }
    }
}

/// The longest silence a WAV recording writes for a gap in the timestamps (a muted peer, a
/// jump): 10 s. A longer gap is kept as 10 s, so that no timestamp can make a worker write
/// hours of zeros.
const MAX_WAV_GAP_SECONDS: u64 = 10;

/// What a recording writes with.
enum Writer {
    /// Opus packets into Ogg pages.
    Ogg(OggOpusRecorder<Vec<u8>>),
    /// Decoded samples behind a WAV header.
    Wav(WavWriter),
}

/// Decoded audio as WAV bytes: a header whose sizes are filled in at the end, then samples.
struct WavWriter {
    decoder: AudioDecoder,
    rate: u32,
    pcm: Vec<i16>,
    data: Vec<u8>,
    header_len: usize,
    /// Bytes of samples written so far (a WAV file holds at most 4 GiB of them).
    written: u32,
}

impl WavWriter {
    /// Appends `gap` samples of silence, then `samples`, as far as the format's size allows.
    fn append(&mut self, gap: u64, n: usize) {
        let room = (u32::MAX - self.header_len as u32 - self.written) as u64 / 2;
        let gap = gap.min(room);
        let n = (n as u64).min(room - gap) as usize;
        self.data.resize(self.data.len() + 2 * gap as usize, 0);
        self.data
            .extend(self.pcm[..n].iter().flat_map(|s| s.to_le_bytes()));
        self.written += 2 * (gap as u32 + n as u32);
    }
}

/// A track's received audio written to a file. Gaps in the RTP timestamps (loss, a muted
/// peer) are kept as time; packets that come late (before the end of what was written) are
/// skipped, as are packets of another payload type.
pub struct Recording {
    file: FileId,
    writer: Writer,
    payload_type: u8,
    clock_rate: u32,
    expected_ts: Option<u32>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("file", &self.file)
            .field("clock_rate", &self.clock_rate)
            .finish_non_exhaustive()
    }
}

impl Recording {
    /// Records a track (`payload_type`, on a `clock_rate` RTP clock, of `codec`; `None` for
    /// video) into `file` as `format`; fails as [`RecordingFormat::check`] does.
    pub fn new(
        file: FileId,
        format: RecordingFormat,
        codec: Option<CodecKind>,
        payload_type: u8,
        clock_rate: u32,
    ) -> Result<Self, String> {
        format.check(codec)?;
        let writer = match (format, codec) {
            (RecordingFormat::Wav, Some(codec)) => {
                let rate = codec.clock_rate();
                let data = wav::recording_header(rate);
                Writer::Wav(WavWriter {
                    decoder: AudioDecoder::new(codec).map_err(|e| e.to_string())?,
                    rate,
                    pcm: vec![0; MAX_FRAME_SAMPLES],
                    header_len: data.len(),
                    data,
                    written: 0,
                })
            }
            _ => Writer::Ogg(
                OggOpusRecorder::new(Vec::new(), 1, format!("recording {}", file.0))
                    .expect("writing into memory cannot fail"),
            ),
        };
        Ok(Recording {
            file,
            writer,
            payload_type,
            clock_rate: clock_rate.max(1),
            expected_ts: None,
        })
    }

    /// The file it writes.
    pub fn file(&self) -> FileId {
        self.file
    }

    /// Records an authenticated, decrypted RTP packet.
    pub fn record(&mut self, rtp: &[u8]) {
        let Ok(packet) = RtpPacket::new_checked(rtp) else {
            return;
        };
        if packet.payload_type() != self.payload_type {
            return;
        }
        let Ok(payload) = packet.payload_unpadded() else {
            return;
        };
        let ts = packet.timestamp();
        let clock = u64::from(self.clock_rate);
        // The gap since the end of what was written, in RTP clock units.
        let gap = match self.expected_ts {
            None => 0,
            Some(expected) => match ts.wrapping_sub(expected) {
                // Late or reordered: it cannot be placed in the past of the file.
                d if d >= 0x8000_0000 => return,
                d => u64::from(d),
            },
        };
        // Samples of the packet, at the rate the writer counts in.
        let (samples, rate) = match &mut self.writer {
            Writer::Ogg(recorder) => {
                let Some(samples) = packet_samples(payload) else {
                    return;
                };
                // Writing into memory cannot fail.
                let _ = recorder.write(payload, gap * 48_000 / clock);
                (samples as usize, 48_000)
            }
            Writer::Wav(w) => {
                let Ok(n) = w.decoder.decode(payload, &mut w.pcm) else {
                    return;
                };
                let rate = u64::from(w.rate);
                w.append((gap * rate / clock).min(MAX_WAV_GAP_SECONDS * rate), n);
                (n, w.rate)
            }
        };
        let duration = samples as u64 * clock / u64::from(rate);
        self.expected_ts = Some(ts.wrapping_add(duration as u32));
    }

    /// The bytes written since the last call, for the file writer.
    pub fn take_pages(&mut self) -> Option<FileWrite> {
        let data = match &mut self.writer {
            Writer::Ogg(recorder) => std::mem::take(recorder.writer_mut()),
            Writer::Wav(w) => std::mem::take(&mut w.data),
        };
        (!data.is_empty()).then_some(FileWrite {
            file: self.file,
            data,
            last: false,
            patches: Vec::new(),
        })
    }

    /// Ends the recording: the last bytes (and a WAV header's sizes), after which the file is
    /// closed.
    pub fn finish(self) -> FileWrite {
        let (data, patches) = match self.writer {
            Writer::Ogg(recorder) => (recorder.finish().unwrap_or_default(), Vec::new()),
            Writer::Wav(w) => (
                w.data,
                wav::finished_sizes(w.header_len, w.written).to_vec(),
            ),
        };
        FileWrite {
            file: self.file,
            data,
            last: true,
            patches,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{RtpHeader, SeqNo, Ssrc};

    #[test]
    fn pages_come_out_as_bytes_and_load_back() {
        let mut rec = Recording::new(
            FileId(3),
            RecordingFormat::OggOpus,
            Some(CodecKind::Opus),
            120,
            16_000,
        )
        .unwrap();
        let mut bytes = rec.take_pages().expect("the headers").data;
        let mut buf = [0u8; 64];
        for i in 0..120u32 {
            let header = RtpHeader {
                payload_type: 120,
                seq: SeqNo(i as u16),
                // A gap of 5 packets after packet 59.
                timestamp: (i + if i >= 60 { 5 } else { 0 }) * 320,
                ssrc: Ssrc(1),
                ..RtpHeader::default()
            };
            let n = header.emit(&mut buf, &[0xf8, i as u8, 0]).unwrap();
            rec.record(&buf[..n]);
            if let Some(w) = rec.take_pages() {
                assert_eq!((w.file, w.last), (FileId(3), false));
                bytes.extend(w.data);
            }
        }
        let end = rec.finish();
        assert!(end.last);
        bytes.extend(end.data);
        let dir = tempfile_dir();
        let path = dir.join("rec.opus");
        std::fs::write(&path, &bytes).unwrap();
        let clip = crate::media::AudioClip::load_ogg_opus(&path).unwrap();
        assert_eq!(clip.packets.len(), 120);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_wav_recording_decodes_keeps_gaps_and_gets_its_sizes_at_the_end() {
        let mut rec = Recording::new(
            FileId(4),
            RecordingFormat::Wav,
            Some(CodecKind::Pcmu),
            0,
            8_000,
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 200];
        let tone: Vec<u8> = (0..160)
            .map(|i| audio_codec_algorithms::encode_ulaw(((i as f64 * 0.2).sin() * 9_000.0) as i16))
            .collect();
        for i in 0..10u32 {
            // Packet 5 never came; one of payload type 101 is not audio.
            if i == 5 {
                continue;
            }
            let header = RtpHeader {
                payload_type: 0,
                seq: SeqNo(i as u16),
                timestamp: 1_000 + i * 160,
                ssrc: Ssrc(1),
                ..RtpHeader::default()
            };
            let n = header.emit(&mut buf, &tone).unwrap();
            rec.record(&buf[..n]);
            let n = RtpHeader {
                payload_type: 101,
                ..header
            }
            .emit(&mut buf, &[1, 0x8a, 0, 160])
            .unwrap();
            rec.record(&buf[..n]);
            bytes.extend(rec.take_pages().map(|w| w.data).unwrap_or_default());
        }
        let end = rec.finish();
        assert!(end.last);
        bytes.extend(end.data);
        for (at, patch) in end.patches {
            bytes[at as usize..at as usize + 4].copy_from_slice(&patch);
        }
        let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec().sample_rate, 8_000);
        assert_eq!(reader.spec().channels, 1);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 10 * 160, "nine packets and the gap of one");
        assert!(samples[5 * 160..6 * 160].iter().all(|&s| s == 0));
        let loud = |range: std::ops::Range<usize>| samples[range].iter().any(|s| s.abs() > 5_000);
        assert!(loud(0..160) && loud(6 * 160..7 * 160));
    }

    #[test]
    fn formats_follow_the_name_and_fit_the_codec() {
        let wav = RecordingFormat::for_path(Path::new("/r/a.WAV"));
        assert_eq!(wav, RecordingFormat::Wav);
        assert_eq!(
            RecordingFormat::for_path(Path::new("a.opus")),
            RecordingFormat::OggOpus
        );
        assert!(wav.check(Some(CodecKind::Pcma)).is_ok());
        assert!(wav.check(None).is_err());
        let err = RecordingFormat::OggOpus
            .check(Some(CodecKind::Pcmu))
            .unwrap_err();
        assert!(err.contains("pcmu") && err.contains(".wav"), "{err}");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("srtpd-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
