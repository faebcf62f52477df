//! Ogg Opus playback and recording through the real daemon.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::daemon::{Client, Layout, TestDaemon, addr};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::{Value, json};
use srtpd::media::{AudioClip, OggOpusRecorder};
use webrtc_srtp::protection_profile::ProtectionProfile;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CALL: &str = "MEDIA-1";

/// Writes a clip of `n` distinct 20 ms Opus packets (CELT FB, one frame each).
fn write_clip(path: &Path, n: usize) -> Vec<Vec<u8>> {
    let packets: Vec<Vec<u8>> = (0..n)
        .map(|i| vec![0xf8, (i >> 8) as u8, i as u8, 0x5a])
        .collect();
    let mut rec = OggOpusRecorder::create(path, 1).unwrap();
    for p in &packets {
        rec.write(p, 0).unwrap();
    }
    rec.finish().unwrap();
    packets
}

fn start(client: &mut Client, peer: &Peer, audio: Value) -> Value {
    let (ours, theirs) = ([3u8; 30], [4u8; 30]);
    let _ = peer;
    client.ok(
        "call.start",
        json!({
            "call_id": CALL, "bind": "127.0.0.1", "mute_mode": "drop",
            "candidates": [{"ip": "127.0.0.1", "port": peer.addr().port()}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": B64.encode(ours), "rx": B64.encode(theirs)},
            "audio": audio,
        }),
    )
}

fn peer() -> Peer {
    Peer::new(
        "127.0.0.1",
        ProtectionProfile::Aes128CmHmacSha1_80,
        &[4u8; 30],
        &[3u8; 30],
        16,
    )
}

/// A daemon in `layout` carrying call [`CALL`] with this audio track to a new peer, and a
/// client subscribed to its events; the last item is `call.start`'s result.
fn call_to_peer(layout: Layout, audio: Value) -> (TestDaemon, Client, Peer, Value) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    client.ok("events.subscribe", json!({}));
    let peer = peer();
    let started = start(&mut client, &peer, audio);
    (daemon, client, peer, started)
}

/// The RTP timestamps of these packets.
fn timestamps<'a>(rtp: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<u32> {
    rtp.into_iter()
        .map(|p| u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
        .collect()
}

/// Checks what a peer got around a played clip: the track's own source (whose payloads `own`
/// tells), the whole clip, then the own source again (`after` packets or more), as one
/// stream: sequence numbers without a gap, timestamps one 20 ms packet time apart.
fn assert_clip_between_own_source(
    rtp: &[Vec<u8>],
    clip: &[Vec<u8>],
    own: impl Fn(&[u8]) -> bool,
    after: usize,
) {
    let text: String = rtp
        .iter()
        .map(|p| match &p[12..] {
            c if clip.iter().any(|p| p == c) => 'c',
            o if own(o) => 'o',
            _ => '?',
        })
        .collect();
    let clip_at = text.find('c').expect("the clip was played");
    assert!(
        clip_at > 0 && text[..clip_at].chars().all(|k| k == 'o'),
        "{text}"
    );
    let rest = &text[clip_at..];
    assert!(rest.starts_with(&"c".repeat(clip.len())), "{text}");
    let resumed = &rest[clip.len()..];
    assert!(
        resumed.len() >= after && resumed.chars().all(|k| k == 'o'),
        "{text}"
    );
    let seqs: Vec<u16> = rtp
        .iter()
        .map(|p| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
    let ts = timestamps(rtp);
    assert!(
        ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 960),
        "{text} {ts:?}"
    );
}

in_both_layouts! {
fn playback_sends_every_packet_on_its_own_clock(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("ten-seconds.opus");
    let packets = write_clip(&clip, 500);
    let (_daemon, mut client, mut peer, _) = call_to_peer(
        layout,
        json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "file", "path": clip}}),
    );
    peer.pump(Duration::from_secs(12), 500);
    let got: Vec<&Vec<u8>> = peer
        .seen
        .rtp
        .iter()
        .filter(|p| p[1] & 0x7f == 111)
        .collect();
    assert_eq!(got.len(), 500, "every packet of the clip");
    assert!(
        got.iter()
            .zip(&packets)
            .all(|(p, c)| &p[12..] == c.as_slice()),
        "payloads in order"
    );
    let ts = timestamps(got);
    assert!(
        ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 960),
        "timestamps one packet apart"
    );
    // The last packet left 9.98 s after the first: measured from the packets' arrival times.
    let spread = *peer.seen.arrivals.last().unwrap() - peer.seen.arrivals[0];
    let expected = Duration::from_millis(499 * 20);
    assert!(
        spread.abs_diff(expected) <= Duration::from_millis(20),
        "last packet {spread:?} after the first"
    );
    let ended = client
        .wait_event("track.source_ended", Some(CALL), Duration::from_secs(2))
        .expect("track.source_ended");
    assert_eq!(ended["media"], "audio");
}
}

/// Two daemons: A plays `clip`, B records to `recording`. Returns them and B's client.
fn play_and_record(
    layout: Layout,
    clip: &Path,
    recording: &Path,
) -> (TestDaemon, TestDaemon, Client, Client) {
    let (a, b) = (TestDaemon::start(layout), TestDaemon::start(layout));
    let (mut ca, mut cb) = (a.client(), b.client());
    let (pa, pb) = (a.bind_port(), b.bind_port());
    let (ka, kb) = (B64.encode([5u8; 30]), B64.encode([6u8; 30]));
    let params = |own: u16, other: u16, tx: &str, rx: &str, audio: Value| {
        json!({
            "call_id": CALL, "bind": format!("127.0.0.1:{own}"),
            "candidates": [{"ip": "127.0.0.1", "port": other}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": tx, "rx": rx},
            "audio": audio,
        })
    };
    cb.ok("events.subscribe", json!({}));
    cb.ok(
        "call.start",
        params(pb, pa, &kb, &ka, json!({"payload_type": 111, "clock_rate": 48000, "sink": {"kind": "file", "path": recording}})),
    );
    ca.ok("events.subscribe", json!({}));
    ca.ok(
        "call.start",
        params(pa, pb, &ka, &kb, json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "file", "path": clip}})),
    );
    (a, b, ca, cb)
}

in_both_layouts! {
fn a_recording_holds_what_was_played_even_when_cut_short(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.opus");
    let packets = write_clip(&clip, 150);
    let recording = dir.path().join("rec.opus");
    let (_a, _b, mut ca, mut cb) = play_and_record(layout, &clip, &recording);
    ca.wait_event("track.source_ended", Some(CALL), Duration::from_secs(6))
        .expect("the clip ended");
    std::thread::sleep(Duration::from_millis(200));
    cb.ok("call.terminate", json!({"call_id": CALL}));
    let recorded = AudioClip::load_ogg_opus(&recording).expect("a finished recording");
    assert_eq!(recorded.packets.len(), 150);
    assert!(
        recorded
            .packets
            .iter()
            .zip(&packets)
            .all(|((r, _), p)| r == p)
    );

    // Terminated mid-clip: what arrived so far is a valid file.
    let cut = dir.path().join("cut.opus");
    let (_a, _b, _ca, mut cb) = play_and_record(layout, &clip, &cut);
    std::thread::sleep(Duration::from_millis(1000));
    cb.ok("call.terminate", json!({"call_id": CALL}));
    let partial = AudioClip::load_ogg_opus(&cut).expect("a recording cut by terminate is playable");
    assert!(
        (30..150).contains(&partial.packets.len()),
        "{} packets",
        partial.packets.len()
    );
    assert!(
        partial
            .packets
            .iter()
            .zip(&packets)
            .all(|((r, _), p)| r == p),
        "a prefix of the clip"
    );
}
}

/// Plays a 150-packet clip from A to a recording on B, sends B `signal` after `after`, and
/// returns what B's recording holds, checked to be a prefix of the clip, and B's exit.
fn recording_cut_by(
    layout: Layout,
    signal: i32,
    after: Duration,
) -> (AudioClip, std::process::ExitStatus) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.opus");
    let packets = write_clip(&clip, 150);
    let recording = dir.path().join("rec.opus");
    let (_a, mut b, _ca, _cb) = play_and_record(layout, &clip, &recording);
    std::thread::sleep(after);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(b.pid() as i32, signal) }, 0);
    let status = b.wait_exit(Duration::from_secs(5)).expect("srtpd exits");
    let partial = AudioClip::load_ogg_opus(&recording).expect("the cut recording is playable");
    assert!(
        partial
            .packets
            .iter()
            .zip(&packets)
            .all(|((r, _), p)| r == p),
        "a prefix of the clip"
    );
    (partial, status)
}

in_both_layouts! {
fn a_recording_cut_by_kill_9_is_playable_up_to_its_last_page(layout: Layout) {
    let (partial, _) = recording_cut_by(layout, libc::SIGKILL, Duration::from_millis(2500));
    // A page ends every second of audio: at least the first second is on disk.
    assert!(partial.packets.len() >= 50, "{} packets", partial.packets.len());
}

fn a_recording_cut_by_sigterm_is_playable(layout: Layout) {
    let (partial, status) = recording_cut_by(layout, libc::SIGTERM, Duration::from_millis(1000));
    assert!(status.success(), "{status}");
    assert!(!partial.packets.is_empty());
}
}

in_both_layouts! {
fn the_silence_source_sends_silence_at_the_packet_time_with_the_given_ssrc(layout: Layout) {
    let (_daemon, _client, mut peer, _) = call_to_peer(
        layout,
        json!({"payload_type": 111, "clock_rate": 48000, "ssrc": 0x1234_abcd, "source": {"kind": "silence"}}),
    );
    peer.pump(Duration::from_millis(1000), usize::MAX);
    let got: Vec<&Vec<u8>> = peer.seen.rtp.iter().collect();
    assert!(
        (40..=55).contains(&got.len()),
        "{} packets in a second",
        got.len()
    );
    assert!(got.iter().all(|p| p[12..] == srtpd::call::OPUS_SILENCE));
    assert!(
        got.iter().all(|p| p[8..12] == 0x1234_abcdu32.to_be_bytes()),
        "the requested SSRC"
    );
    let ts = timestamps(got);
    assert!(ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 960));
}
}

in_both_layouts! {
fn silence_goes_on_after_a_played_clip(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.opus");
    let packets = write_clip(&clip, 10);
    let (_daemon, mut client, mut peer, _) = call_to_peer(
        layout,
        json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "silence"}}),
    );
    peer.pump(Duration::from_millis(200), usize::MAX);
    client.ok("call.play", json!({"call_id": CALL, "path": clip}));
    client
        .wait_event("track.source_ended", Some(CALL), Duration::from_secs(3))
        .expect("the clip ended");
    peer.pump(Duration::from_millis(500), usize::MAX);
    // Silence, the whole clip, then silence again (it stopped for good before).
    let silence = srtpd::call::OPUS_SILENCE.as_slice();
    assert_clip_between_own_source(&peer.seen.rtp, &packets, |p| p == silence, 15);
}
}

in_both_layouts! {
fn the_producer_goes_on_after_a_played_clip_in_one_stream(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.opus");
    let packets = write_clip(&clip, 10);
    let (_daemon, mut client, mut peer, r) = call_to_peer(
        layout,
        json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp"}}),
    );
    let source = addr(&r["audio"]["source"]);
    // A producer with its own timestamps (starting far from the clip's), every 20 ms.
    let producer = std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..60u16 {
            let ts = 3_000_000 + u32::from(i) * 960;
            socket
                .send_to(&rtp_packet(96, 500 + i, ts, 0xabc, &[0x70, i as u8]), source)
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    peer.pump(Duration::from_millis(300), usize::MAX);
    client.ok("call.play", json!({"call_id": CALL, "path": clip}));
    producer.join().unwrap();
    peer.pump(Duration::from_millis(200), usize::MAX);
    assert_clip_between_own_source(&peer.seen.rtp, &packets, |p| p[0] == 0x70, 10);
}
}

in_both_layouts! {
fn a_g711_track_sends_its_own_silence_and_records_as_wav_only(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, mut client, mut peer, r) = call_to_peer(
        layout,
        json!({"payload_type": 8, "clock_rate": 8000, "source": {"kind": "silence"}}),
    );
    let local = addr(&r["local"]);

    // An Ogg Opus recording of A-law is refused, and no file is made.
    let ogg = dir.path().join("rec.opus");
    let (code, msg) = client
        .call("call.record", json!({"call_id": CALL, "path": ogg}))
        .unwrap_err();
    assert!(code == -32602 && msg.contains("pcma") && msg.contains(".wav"), "{msg}");
    assert!(!ogg.exists());
    let wav = dir.path().join("rec.wav");
    client.ok("call.record", json!({"call_id": CALL, "path": wav}));

    // The peer sends a second of a loud A-law square wave; srtpd sends A-law silence.
    for i in 0..50u16 {
        let level = if i % 2 == 0 { 16_000 } else { -16_000 };
        let payload = [audio_codec_algorithms::encode_alaw(level); 160];
        peer.send_rtp(&rtp_packet(8, i, u32::from(i) * 160, 0x77, &payload), local);
        peer.pump(Duration::from_millis(20), usize::MAX);
    }
    peer.pump(Duration::from_millis(200), usize::MAX);
    let sent = &peer.seen.rtp;
    assert!(sent.len() >= 40, "{} packets of silence", sent.len());
    assert!(sent.iter().all(|p| p[1] & 0x7f == 8 && p[12..] == [0xd5; 160]));
    let ts = timestamps(sent);
    assert!(ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 160), "8 kHz steps");

    client.ok("call.record", json!({"call_id": CALL, "path": null}));
    let rec = srtpd::media::wav::WavClip::load(&wav).unwrap();
    assert_eq!(rec.rate, 8_000);
    assert_eq!(rec.samples.len(), 50 * 160);
    assert!(rec.samples.iter().all(|s| s.unsigned_abs() > 4_000), "loud all through");
}
}

in_both_layouts! {
fn bad_files_are_clear_errors_and_change_nothing(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, mut client, mut peer, r) = call_to_peer(
        layout,
        json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp"}}),
    );
    let source = addr(&r["audio"]["source"]);

    let play = |client: &mut Client, path: &PathBuf| {
        client.call("call.play", json!({"call_id": CALL, "path": path}))
    };
    let missing = dir.path().join("missing.opus");
    let (code, msg) = play(&mut client, &missing).unwrap_err();
    assert_eq!(code, -32602);
    assert!(
        msg.contains("path:") && msg.contains("missing.opus"),
        "{msg}"
    );
    let text = dir.path().join("text.opus");
    std::fs::write(&text, "hello").unwrap();
    let (_, msg) = play(&mut client, &text).unwrap_err();
    assert!(msg.contains("text.opus: neither Ogg Opus nor WAV"), "{msg}");
    let vorbis = dir.path().join("other.ogg");
    {
        let mut w = ogg::PacketWriter::new(std::fs::File::create(&vorbis).unwrap());
        w.write_packet(
            b"\x01vorbis-not-opus".to_vec(),
            7,
            ogg::PacketWriteEndInfo::EndStream,
            0,
        )
        .unwrap();
    }
    let (_, msg) = play(&mut client, &vorbis).unwrap_err();
    assert!(msg.contains("not an Ogg Opus stream"), "{msg}");
    let clip = dir.path().join("clip.opus");
    write_clip(&clip, 5);
    let (code, msg) = client
        .call(
            "call.play",
            json!({"call_id": CALL, "media": "video", "path": clip}),
        )
        .unwrap_err();
    assert!(code == -32602 && msg.contains("no video track"), "{msg}");

    // The track kept its RTP source.
    let producer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..10u16 {
        producer
            .send_to(&rtp_packet(96, i, u32::from(i) * 960, 1, &[7; 40]), source)
            .unwrap();
    }
    peer.pump(Duration::from_secs(2), 10);
    assert_eq!(
        peer.seen.rtp.iter().filter(|p| p[1] & 0x7f == 111).count(),
        10
    );

    // An unwritable recording path fails before anything starts.
    let unwritable = dir.path().join("no/such/dir/rec.opus");
    let (code, msg) = client
        .call("call.record", json!({"call_id": CALL, "path": unwritable}))
        .unwrap_err();
    assert!(code == -32602 && msg.contains("path:"), "{msg}");
    let mut p = json!({
        "call_id": "OTHER", "bind": "127.0.0.1",
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": B64.encode([1u8; 30]), "rx": B64.encode([1u8; 30])},
        "audio": {"payload_type": 111, "clock_rate": 48000, "sink": {"kind": "file", "path": unwritable}},
    });
    let (code, msg) = client.call("call.start", p.clone()).unwrap_err();
    assert!(code == -32602 && msg.contains("audio.sink.path"), "{msg}");
    p["audio"]["sink"] = json!({"kind": "none"});
    p["audio"]["source"] = json!({"kind": "file", "path": missing});
    let (code, msg) = client.call("call.start", p).unwrap_err();
    assert!(code == -32602 && msg.contains("audio.source.path"), "{msg}");
    assert_eq!(client.ok("daemon.status", json!({}))["calls"], 1);

    // call.record starts and stops a recording while the call runs.
    let rec = dir.path().join("live.opus");
    client.ok("call.record", json!({"call_id": CALL, "path": rec}));
    client.ok("call.record", json!({"call_id": CALL, "path": null}));
    assert!(rec.exists());
}
}

fn ffprobe_duration(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

fn ffmpeg_decodes(path: &Path) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

in_both_layouts! {
#[ignore = "needs ffmpeg; run by .ci/run"]
fn recordings_decode_in_ffmpeg_with_the_clip_duration(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("tone.opus");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
        ])
        .args(["-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20"])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let clip_seconds = AudioClip::load_ogg_opus(&clip).unwrap().samples() as f64 / 48_000.0;

    let whole = dir.path().join("whole.opus");
    let (_a, _b, mut ca, mut cb) = play_and_record(layout, &clip, &whole);
    ca.wait_event("track.source_ended", Some(CALL), Duration::from_secs(6))
        .expect("the clip ended");
    std::thread::sleep(Duration::from_millis(200));
    cb.ok("call.terminate", json!({"call_id": CALL}));
    ffmpeg_decodes(&whole);
    let recorded = ffprobe_duration(&whole);
    assert!(
        (recorded - clip_seconds).abs() <= 0.020,
        "recorded {recorded} s of a {clip_seconds} s clip"
    );

    let cut = dir.path().join("cut.opus");
    let (_a, _b, _ca, mut cb) = play_and_record(layout, &clip, &cut);
    std::thread::sleep(Duration::from_millis(1200));
    cb.ok("call.terminate", json!({"call_id": CALL}));
    ffmpeg_decodes(&cut);
    let partial = ffprobe_duration(&cut);
    assert!(
        (0.5..clip_seconds).contains(&partial),
        "{partial} s after a mid-call terminate"
    );

    let killed = dir.path().join("sigterm.opus");
    let (_a, mut b, _ca, _cb) = play_and_record(layout, &clip, &killed);
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(b.pid() as i32, libc::SIGTERM) }, 0);
    assert!(
        b.wait_exit(Duration::from_secs(5))
            .expect("srtpd exits")
            .success()
    );
    ffmpeg_decodes(&killed);
    assert!(ffprobe_duration(&killed) >= 0.5);
}
}

in_both_layouts! {
fn the_workers_sleep_once_their_calls_ended(layout: Layout) {
    for io in ["epoll", "io_uring"] {
        let daemon = TestDaemon::start_with(layout, &format!("io = \"{io}\"\n"));
        let mut client = daemon.client();
        let mut peer = peer();
        start(
            &mut client,
            &peer,
            json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "silence"}}),
        );
        peer.pump(Duration::from_millis(300), usize::MAX);
        assert!(!peer.seen.rtp.is_empty(), "{io}: the call ran");
        client.ok("call.terminate", json!({"call_id": CALL}));
        // With no call, a worker has no deadline: it sleeps until a message or a datagram.
        // (A worker that kept an ended call's deadline polled without waiting, a core each.)
        std::thread::sleep(Duration::from_millis(200));
        let before = daemon.worker_cpu();
        std::thread::sleep(Duration::from_millis(1500));
        let used = daemon.worker_cpu() - before;
        assert!(
            used <= Duration::from_millis(50),
            "{io}: idle workers used {used:?} of CPU in 1.5 s"
        );
    }
}
}
