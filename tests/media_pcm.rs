//! The PCM path's parts with audio made and checked by tools nobody here wrote, where they
//! run: rate conversion keeps a tone at every bridge rate; WAV files ffmpeg wrote load, and
//! WAV files srtpd writes are read by ffprobe and ffmpeg with the tone intact; Opus srtpd
//! encodes decodes in ffmpeg.

mod common;

use std::process::Command;

use common::ffmpeg;
use common::tone::{dominant, tone};
use srtpd::media::codec::{AudioEncoder, CodecKind};
use srtpd::media::resample::{FrameResampler, frame_samples};
use srtpd::media::wav::{WavClip, finished_sizes, recording_header};

/// Converts `pcm` at `from` Hz in 20 ms frames to `to` Hz, dropping the filter's delay.
fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    let mut r = FrameResampler::new(from, to).unwrap();
    let mut frame = vec![0i16; frame_samples(to)];
    let mut out = Vec::new();
    for chunk in pcm.chunks_exact(frame_samples(from)) {
        r.process(chunk, &mut frame).unwrap();
        out.extend_from_slice(&frame);
    }
    out.split_off(r.delay())
}

#[test]
fn a_tone_keeps_its_frequency_and_level_through_every_bridge_rate() {
    for (from, to) in [
        (48_000, 8_000),
        (8_000, 48_000),
        (48_000, 16_000),
        (16_000, 48_000),
        (48_000, 24_000),
        (24_000, 48_000),
        (44_100, 48_000),
        (48_000, 48_000),
    ] {
        let out = resample(&tone(440.0, from, from as usize, 0), from, to);
        let settled = &out[frame_samples(to)..to as usize / 2];
        assert_eq!(dominant(settled, to, 400..=480), 440, "{from} → {to}");
        let peak = settled.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(
            (9_000..=11_000).contains(&peak),
            "{from} → {to}: peak {peak}"
        );
    }
}

#[test]
#[ignore = "needs ffmpeg; run by .ci/run"]
fn wav_written_by_ffmpeg_loads_and_keeps_its_tone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.wav");
    let status = ffmpeg()
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=1",
        ])
        .args(["-ac", "2", "-c:a", "pcm_s16le"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let clip = WavClip::load(&path).unwrap();
    assert_eq!(clip.rate, 44_100);
    assert!(
        (44_000..=44_200).contains(&clip.samples.len()),
        "{}",
        clip.samples.len()
    );
    let at48 = resample(&clip.samples, 44_100, 48_000);
    assert_eq!(dominant(&at48[4_800..28_800], 48_000, 420..=460), 440);
}

#[test]
#[ignore = "needs ffmpeg; run by .ci/run"]
fn wav_and_opus_srtpd_writes_decode_in_ffmpeg_with_the_tone_intact() {
    let dir = tempfile::tempdir().unwrap();
    // A WAV recording as srtpd writes one: header, samples, sizes at the end.
    let pcm = tone(1_000.0, 16_000, 16_000, 0);
    let mut file = recording_header(16_000);
    let header_len = file.len();
    for s in &pcm {
        file.extend_from_slice(&s.to_le_bytes());
    }
    for (at, bytes) in finished_sizes(header_len, (pcm.len() * 2) as u32) {
        file[at as usize..at as usize + 4].copy_from_slice(&bytes);
    }
    let wav = dir.path().join("out.wav");
    std::fs::write(&wav, &file).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels,duration",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(&wav)
        .output()
        .unwrap();
    let probed = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success(), "{probed}");
    for want in [
        "codec_name=pcm_s16le",
        "sample_rate=16000",
        "channels=1",
        "duration=1.000000",
    ] {
        assert!(probed.contains(want), "{want}: {probed}");
    }
    let decoded = decode(&wav, 16_000);
    assert_eq!(dominant(&decoded[1_600..9_600], 16_000, 980..=1_020), 1_000);

    // Opus frames srtpd encodes, in a raw Opus-in-Ogg file ffmpeg reads.
    let mut encoder = AudioEncoder::new(CodecKind::Opus).unwrap();
    let opus = dir.path().join("out.opus");
    let mut recorder = srtpd::media::OggOpusRecorder::create(&opus, 1).unwrap();
    for frame in tone(1_000.0, 48_000, 48_000, 0).chunks_exact(960) {
        let mut payload = [0u8; 1500];
        let n = encoder.encode(frame, &mut payload).unwrap();
        recorder.write(&payload[..n], 0).unwrap();
    }
    recorder.finish().unwrap();
    let decoded = decode(&opus, 48_000);
    assert!(decoded.len() >= 47_000, "{} samples", decoded.len());
    assert_eq!(
        dominant(&decoded[4_800..28_800], 48_000, 980..=1_020),
        1_000
    );
}

/// `path` decoded by ffmpeg to mono 16-bit samples at `rate`.
fn decode(path: &std::path::Path, rate: u32) -> Vec<i16> {
    let out = ffmpeg()
        .arg("-i")
        .arg(path)
        .args(["-f", "s16le", "-ac", "1", "-ar", &rate.to_string(), "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}
