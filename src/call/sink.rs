//! Where a track's received media goes, besides a local RTP address (which the endpoint sends
//! to from the track's local port): a recording, kept as Ogg Opus bytes in memory until the
//! daemon's file writer takes them, so that no worker ever waits on a disk.

use crate::media::OggOpusRecorder;
use crate::media::opus::packet_samples;
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
}

/// Received Opus written as an Ogg Opus stream. Gaps in the RTP timestamps (loss, a muted
/// peer) are kept as time.
pub struct Recording {
    file: FileId,
    recorder: OggOpusRecorder<Vec<u8>>,
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
    /// Records a mono track whose RTP clock runs at `clock_rate` into `file`.
    pub fn new(file: FileId, clock_rate: u32) -> Self {
        let recorder = OggOpusRecorder::new(Vec::new(), 1, format!("recording {}", file.0))
            .expect("writing into memory cannot fail");
        Recording {
            file,
            recorder,
            clock_rate: clock_rate.max(1),
            expected_ts: None,
        }
    }

    /// The file it writes.
    pub fn file(&self) -> FileId {
        self.file
    }

    /// Records an authenticated, decrypted RTP packet (Opus). Packets that are not Opus, or
    /// come late (a timestamp before the end of what was written), are skipped.
    pub fn record(&mut self, rtp: &[u8]) {
        let Ok(packet) = RtpPacket::new_checked(rtp) else {
            return;
        };
        let Ok(payload) = packet.payload_unpadded() else {
            return;
        };
        let Some(samples) = packet_samples(payload) else {
            return;
        };
        let ts = packet.timestamp();
        let clock = u64::from(self.clock_rate);
        let gap = match self.expected_ts {
            None => 0,
            Some(expected) => match ts.wrapping_sub(expected) {
                // Late or reordered: it cannot be placed in the past of the file.
                d if d >= 0x8000_0000 => return,
                d => u64::from(d) * 48_000 / clock,
            },
        };
        // Writing into memory cannot fail.
        let _ = self.recorder.write(payload, gap);
        self.expected_ts = Some(ts.wrapping_add((u64::from(samples) * clock / 48_000) as u32));
    }

    /// Whole pages written since the last call, for the file writer.
    pub fn take_pages(&mut self) -> Option<FileWrite> {
        let data = std::mem::take(self.recorder.writer_mut());
        (!data.is_empty()).then_some(FileWrite {
            file: self.file,
            data,
            last: false,
        })
    }

    /// Ends the stream: the last bytes, after which the file is closed.
    pub fn finish(self) -> FileWrite {
        FileWrite {
            file: self.file,
            data: self.recorder.finish().unwrap_or_default(),
            last: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{RtpHeader, SeqNo, Ssrc};

    #[test]
    fn pages_come_out_as_bytes_and_load_back() {
        let mut rec = Recording::new(FileId(3), 16_000);
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
        let clip = crate::media::OpusClip::load(&path).unwrap();
        assert_eq!(clip.packets.len(), 120);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("srtpd-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
