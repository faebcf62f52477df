//! ffmpeg as an external SRTP peer: audio ffmpeg sends through its srtp:// output reaches
//! srtpd's sink, and audio srtpd sends decodes in ffmpeg (SDP input with a=crypto).
//! Needs ffmpeg on PATH, so it is ignored by a plain `cargo test`; .ci/run installs ffmpeg and
//! runs it with `cargo test -- --ignored`.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Layout, TestDaemon, addr, free_port, udp};
use common::ffmpeg;
use common::rtp_packet;
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn audio_from_ffmpeg_reaches_the_sink(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let key = B64.encode((0..30u8).map(|i| i ^ 0x3c).collect::<Vec<u8>>());
    let other = B64.encode([1u8; 30]);
    let sink = udp("127.0.0.1");
    let r = client.ok(
        "call.start",
        json!({
            "call_id": "FF-IN", "bind": "127.0.0.1", "candidates": [],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": other, "rx": key},
            "audio": {"payload_type": 0, "clock_rate": 8000, "sink": {"kind": "rtp", "forward": sink.local_addr().unwrap()}},
        }),
    );
    let local = addr(&r["local"]);
    // Two seconds of a 440 Hz tone as PCMU in 20 ms packets, over SRTP, RTCP muxed on the port.
    common::ffmpeg_srtp_tone(
        2,
        &["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1", "-payload_type", "0"],
        &key,
        local,
        200,
    );

    let got = common::daemon::receive_all(&sink, 1000, Duration::from_millis(1500));
    // 2 s of 8 kHz audio is 16000 samples; ffmpeg packs them into RTP packets of at most
    // 200 bytes, so at least 16000 / 188 of them.
    let samples: usize = got.iter().map(|(d, _)| d.len() - 12).sum();
    assert!(
        samples >= 15_000,
        "only {samples} samples arrived in {} packets",
        got.len()
    );
    assert!(
        got.iter().all(|(d, _)| d[1] & 0x7f == 0),
        "PCMU payload type"
    );
    let stats = client.ok("call.stats", json!({"call_id": "FF-IN"}));
    assert_eq!(stats["state"], "connected");
    assert_eq!(stats["audio"]["dropped"]["auth"], 0, "{stats}");
}
}

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn audio_from_srtpd_decodes_in_ffmpeg(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let key = B64.encode((0..30u8).map(|i| i.wrapping_mul(3)).collect::<Vec<u8>>());
    let ff_port = free_port("127.0.0.1") & !1;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let mut ff =
        common::ffmpeg_srtp_receiver(dir.path(), ff_port, 0, "PCMU/8000", &key, "1.5", &wav);

    let r = client.ok(
        "call.start",
        json!({
            "call_id": "FF-OUT", "bind": "127.0.0.1",
            "candidates": [{"ip": "127.0.0.1", "port": ff_port}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": key, "rx": key},
            "audio": {"payload_type": 0, "clock_rate": 8000, "source": {"kind": "rtp"}},
        }),
    );
    let source = addr(&r["audio"]["source"]);
    // Three seconds of PCMU (a square wave) fed in real time, 20 ms per packet.
    let producer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for i in 0..150u32 {
        let payload: Vec<u8> = (0..160)
            .map(|j| if (j / 10) % 2 == 0 { 0x20 } else { 0xa0 })
            .collect();
        producer
            .send_to(&rtp_packet(0, i as u16, i * 160, 0x77, &payload), source)
            .unwrap();
        let due = start + Duration::from_millis(20 * u64::from(i + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if ff.try_wait().unwrap().is_some() {
            break;
        }
    }
    let out = common::wait_for_child(ff, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::metadata(&wav).unwrap().len();
    // 1.5 s of 48 kHz 16-bit mono is 144,000 bytes of samples plus the WAV header.
    assert!(
        bytes >= 138_000,
        "ffmpeg decoded only {bytes} bytes of audio"
    );
    let stats = client.ok("call.stats", json!({"call_id": "FF-OUT"}));
    assert!(
        stats["audio"]["sent"]["packets"].as_u64().unwrap() >= 75,
        "{stats}"
    );
}
}

/// A 1 kHz WAV file ffmpeg wrote, played by srtpd on a track of payload type `pt` (on a
/// `clock` RTP clock, `rtpmap` in ffmpeg's SDP): ffmpeg decodes srtpd's SRTP back to 1 kHz.
fn a_wav_file_ffmpeg_wrote_plays_to_ffmpeg(layout: Layout, pt: u8, clock: u32, rtpmap: &str) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    let status = ffmpeg()
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=16000:duration=4",
        ])
        .args(["-c:a", "pcm_s16le"])
        .arg(&tone)
        .status()
        .unwrap();
    assert!(status.success());
    let key = B64.encode((0..30u8).map(|i| i.wrapping_mul(7)).collect::<Vec<u8>>());
    let ff_port = free_port("127.0.0.1") & !1;
    let heard = dir.path().join("heard.wav");
    let ff = common::ffmpeg_srtp_receiver(dir.path(), ff_port, pt, rtpmap, &key, "2", &heard);
    client.ok(
        "call.start",
        json!({
            "call_id": "FF-WAV", "bind": "127.0.0.1",
            "candidates": [{"ip": "127.0.0.1", "port": ff_port}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": key, "rx": key},
            "audio": {"payload_type": pt, "clock_rate": clock,
                      "source": {"kind": "file", "path": tone}},
        }),
    );
    let out = common::wait_for_child(ff, Duration::from_secs(15));
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clip = srtpd::media::wav::WavClip::load(&heard).unwrap();
    assert!(
        clip.samples.len() >= 48_000,
        "{} samples",
        clip.samples.len()
    );
    let second = &clip.samples[24_000..72_000.min(clip.samples.len())];
    assert_eq!(common::tone::dominant(second, 48_000, 980..=1_020), 1_000);
    let loud = second
        .chunks(960)
        .filter(|f| f.iter().any(|s| s.unsigned_abs() > 2_000))
        .count();
    assert!(
        loud * 100 >= second.chunks(960).count() * 95,
        "{loud} loud frames"
    );
}

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn a_wav_file_ffmpeg_wrote_plays_to_ffmpeg_as_opus(layout: Layout) {
    a_wav_file_ffmpeg_wrote_plays_to_ffmpeg(layout, 111, 48_000, "opus/48000/2");
}
}

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn a_wav_file_ffmpeg_wrote_plays_to_ffmpeg_as_pcmu(layout: Layout) {
    a_wav_file_ffmpeg_wrote_plays_to_ffmpeg(layout, 0, 8_000, "PCMU/8000");
}
}

/// ffmpeg sends 3 s of a 440 Hz tone (encoded by `codec`, its options) into a track of
/// payload type `pt` on a `clock` RTP clock that records to a `.wav` file: ffprobe reads the
/// file as 16-bit mono PCM at `rate`, and ffmpeg, decoding it, finds the tone.
fn ffmpeg_audio_is_recorded_as_wav(layout: Layout, pt: u8, clock: u32, codec: &[&str], rate: u32) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("heard.wav");
    let key = B64.encode((0..30u8).map(|i| i ^ 0x5a).collect::<Vec<u8>>());
    let other = B64.encode([2u8; 30]);
    let r = client.ok(
        "call.start",
        json!({
            "call_id": "FF-REC", "bind": "127.0.0.1", "candidates": [],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": other, "rx": key},
            "audio": {"payload_type": pt, "clock_rate": clock,
                      "sink": {"kind": "file", "path": recording}},
        }),
    );
    common::ffmpeg_srtp_tone(3, codec, &key, addr(&r["local"]), 1_200);
    client.ok("call.terminate", json!({"call_id": "FF-REC"}));

    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(&recording)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "codec_name=pcm_s16le",
            &format!("sample_rate={rate}"),
            "channels=1"
        ],
    );
    // The header's sizes were filled in when the recording ended.
    let bytes = std::fs::read(&recording).unwrap();
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff, bytes.len() - 8, "the RIFF chunk's size");
    let raw = ffmpeg()
        .arg("-i")
        .arg(&recording)
        .args(["-f", "s16le", "-ac", "1", "-ar", "8000", "-"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let pcm: Vec<i16> = raw
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    // Nearly three seconds of audio (ffmpeg's first packets may come before the call hears).
    assert!(pcm.len() >= 8_000 * 5 / 2, "{} samples at 8 kHz", pcm.len());
    let middle = &pcm[4_000..20_000];
    assert_eq!(common::tone::dominant(middle, 8_000, 430..=450), 440);
    let loud = middle
        .chunks(160)
        .filter(|f| f.iter().any(|s| s.unsigned_abs() > 2_000))
        .count();
    assert!(
        loud * 100 >= middle.chunks(160).count() * 95,
        "{loud} loud frames"
    );
}

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn opus_from_ffmpeg_is_recorded_as_wav(layout: Layout) {
    ffmpeg_audio_is_recorded_as_wav(
        layout, 111, 48_000,
        &["-c:a", "libopus", "-ar", "48000", "-ac", "1", "-payload_type", "111"],
        48_000,
    );
}
}

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn pcmu_from_ffmpeg_is_recorded_as_wav(layout: Layout) {
    ffmpeg_audio_is_recorded_as_wav(
        layout, 0, 8_000,
        &["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1", "-payload_type", "0"],
        8_000,
    );
}
}
