//! Ogg Opus files (RFC 7845): read into a clip for playback, and written by a recorder.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};

use super::clip::AudioClip;
use super::codec::CodecKind;
use super::opus::{OpusHead, opus_tags, packet_samples};

/// Why a file cannot be played or recorded.
#[derive(Debug, thiserror::Error)]
pub enum OggOpusError {
    /// The file cannot be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a regular file (a directory, a FIFO, a device).
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The path.
        path: String,
    },
    /// Not an Ogg stream.
    #[error("{path}: not an Ogg file ({reason})")]
    NotOgg {
        /// The file.
        path: String,
        /// What the Ogg reader said.
        reason: String,
    },
    /// An Ogg stream that is not Opus, or a malformed Opus stream.
    #[error("{path}: not an Ogg Opus stream ({reason})")]
    NotOpus {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Opens `path` with `options`, refusing anything but a regular file, without ever waiting:
/// a FIFO or a device would block whoever opens or reads it.
pub fn open_regular(path: &Path, options: &mut std::fs::OpenOptions) -> Result<File, OggOpusError> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = || path.display().to_string();
    // Refused before opening: opening a FIFO for writing with no reader fails with ENXIO,
    // which would say less.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(OggOpusError::NotAFile { path: name() });
    }
    let file = options
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| OggOpusError::Io {
            path: name(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| OggOpusError::Io {
        path: name(),
        source,
    })?;
    if !meta.is_file() {
        return Err(OggOpusError::NotAFile { path: name() });
    }
    Ok(file)
}

impl AudioClip {
    /// Loads a whole Ogg Opus file (the first logical stream).
    pub fn load_ogg_opus(path: &Path) -> Result<AudioClip, OggOpusError> {
        let file = open_regular(path, std::fs::OpenOptions::new().read(true))?;
        Self::read_ogg_opus(std::io::BufReader::new(file), &path.display().to_string())
    }

    /// Reads a whole Ogg Opus stream (the first logical stream) from `input`, called `name`
    /// in errors.
    pub fn read_ogg_opus<R: std::io::Read + std::io::Seek>(
        input: R,
        name: &str,
    ) -> Result<AudioClip, OggOpusError> {
        let name = name.to_owned();
        let mut reader = PacketReader::new(input);
        let not_ogg = |e: ogg::OggReadError| OggOpusError::NotOgg {
            path: name.clone(),
            reason: e.to_string(),
        };
        let not_opus = |reason: &str| OggOpusError::NotOpus {
            path: name.clone(),
            reason: reason.to_owned(),
        };
        let first = reader
            .read_packet()
            .map_err(not_ogg)?
            .ok_or_else(|| not_opus("empty file"))?;
        let head = OpusHead::parse(&first.data)
            .ok_or_else(|| not_opus("no OpusHead in the first packet"))?;
        let serial = first.stream_serial();
        let mut packets = Vec::new();
        let mut tags_seen = false;
        while let Some(p) = reader.read_packet().map_err(not_ogg)? {
            if p.stream_serial() != serial {
                continue;
            }
            if !tags_seen {
                if !p.data.starts_with(b"OpusTags") {
                    return Err(not_opus("no OpusTags after OpusHead"));
                }
                tags_seen = true;
                continue;
            }
            let samples =
                packet_samples(&p.data).ok_or_else(|| not_opus("a packet with an invalid TOC"))?;
            packets.push((p.data, samples));
        }
        if packets.is_empty() {
            return Err(not_opus("no audio packets"));
        }
        Ok(AudioClip {
            codec: CodecKind::Opus,
            channels: head.channels,
            packets,
        })
    }
}

/// Writes received Opus packets as an Ogg Opus stream into `W` (a file, or an in-memory
/// buffer that the daemon's file writer drains). Pages end about once a second, so a file cut
/// short (a crash) loses at most that much; [`OggOpusRecorder::finish`] writes the
/// end-of-stream page.
pub struct OggOpusRecorder<W: Write = BufWriter<File>> {
    writer: PacketWriter<'static, W>,
    path: String,
    serial: u32,
    /// The granule (48 kHz samples) at the end of the last packet written.
    granule: u64,
    /// A packet held back so the last one can be flagged end-of-stream.
    pending: Option<(Vec<u8>, u64)>,
    since_flush: u64,
}

impl OggOpusRecorder {
    /// Creates (or truncates) the file and writes the OpusHead and OpusTags headers.
    pub fn create(path: &Path, channels: u8) -> Result<Self, OggOpusError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| OggOpusError::Io {
            path: name.clone(),
            source,
        })?;
        Self::new(BufWriter::new(file), channels, name)
    }
}

impl<W: Write> OggOpusRecorder<W> {
    /// A recorder writing into `writer` (named `name` in errors); writes the OpusHead and
    /// OpusTags headers.
    pub fn new(writer: W, channels: u8, name: String) -> Result<Self, OggOpusError> {
        let mut writer = PacketWriter::new(writer);
        let serial = rand::random();
        let head = OpusHead {
            channels,
            pre_skip: 0,
            input_rate: 48000,
        };
        let io = |source| OggOpusError::Io {
            path: name.clone(),
            source,
        };
        writer
            .write_packet(head.to_bytes(), serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        writer
            .write_packet(opus_tags(), serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        let mut recorder = OggOpusRecorder {
            writer,
            path: name,
            serial,
            granule: 0,
            pending: None,
            since_flush: 0,
        };
        recorder.flush()?;
        Ok(recorder)
    }

    /// Appends a packet that starts `gap` samples (48 kHz) after the previous one ended: the
    /// time of lost or muted packets is kept in the granule positions.
    pub fn write(&mut self, packet: &[u8], gap: u64) -> Result<(), OggOpusError> {
        let Some(samples) = packet_samples(packet) else {
            return Ok(());
        };
        self.granule += gap + u64::from(samples);
        if let Some((data, granule)) = self.pending.take() {
            let end = if self.since_flush >= 48_000 {
                self.since_flush = 0;
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.writer
                .write_packet(data, self.serial, end, granule)
                .map_err(|source| self.io(source))?;
            if matches!(end, PacketWriteEndInfo::EndPage) {
                self.flush()?;
            }
        }
        self.since_flush += gap + u64::from(samples);
        self.pending = Some((packet.to_vec(), self.granule));
        Ok(())
    }

    /// Writes the last packet with the end-of-stream flag and flushes; returns the writer.
    pub fn finish(mut self) -> Result<W, OggOpusError> {
        if let Some((data, granule)) = self.pending.take() {
            self.writer
                .write_packet(data, self.serial, PacketWriteEndInfo::EndStream, granule)
                .map_err(|source| self.io(source))?;
        }
        self.flush()?;
        Ok(self.writer.into_inner())
    }

    /// The writer, for taking what was written so far out of an in-memory one.
    pub fn writer_mut(&mut self) -> &mut W {
        self.writer.inner_mut()
    }

    fn flush(&mut self) -> Result<(), OggOpusError> {
        self.writer
            .inner_mut()
            .flush()
            .map_err(|source| self.io(source))
    }

    fn io(&self, source: std::io::Error) -> OggOpusError {
        OggOpusError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Samples recorded so far (48 kHz).
    pub fn samples(&self) -> u64 {
        self.granule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_clip_loads_back_with_its_packets() {
        let dir = std::env::temp_dir().join(format!("srtpd-ogg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clip.opus");
        let mut rec = OggOpusRecorder::create(&path, 1).unwrap();
        let packets: Vec<Vec<u8>> = (0..200u8).map(|i| vec![0xf8, i, i ^ 0x55]).collect();
        for p in &packets {
            rec.write(p, 0).unwrap();
        }
        rec.write(&[0xf8, 0xff, 0xfe], 4800).unwrap();
        assert_eq!(rec.samples(), 201 * 960 + 4800);
        rec.finish().unwrap();

        let clip = AudioClip::load_ogg_opus(&path).unwrap();
        assert_eq!(clip.channels, 1);
        assert_eq!(clip.packets.len(), 201);
        assert!(
            clip.packets
                .iter()
                .take(200)
                .map(|(d, _)| d)
                .eq(packets.iter())
        );
        assert_eq!(clip.samples(), 201 * 960);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("srtpd-ogg-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = AudioClip::load_ogg_opus(&dir.join("missing.opus")).unwrap_err();
        assert!(matches!(missing, OggOpusError::Io { .. }), "{missing}");
        let text = dir.join("text.opus");
        std::fs::write(&text, "not an ogg file at all").unwrap();
        let err = AudioClip::load_ogg_opus(&text).unwrap_err();
        assert!(err.to_string().contains("not an Ogg file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
