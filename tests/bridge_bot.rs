//! The bot bridge end to end, with peers nobody here wrote: ffmpeg sends a 440 Hz tone over
//! SRTP (Opus, or PCMU) into srtpd, and a bot on Python's `websockets` hears it in each
//! dialect (Twilio µ-law 8 kHz, L16 at 16 and 48 kHz); the bot says a 1 kHz tone, and ffmpeg
//! decodes srtpd's SRTP to it. Needs ffmpeg and python3 with `websockets`, so it is ignored by
//! a plain `cargo test`; .ci/run installs both and runs it with `cargo test -- --ignored`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Client, TestDaemon, addr, free_port};
use common::tone::dominant;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The Python the bot runs on: `SRTPD_TEST_PYTHON`, else the system's (where Debian's
/// python3-websockets lives).
fn python() -> String {
    std::env::var("SRTPD_TEST_PYTHON").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".to_owned()
        } else {
            "python3".to_owned()
        }
    })
}

/// tests/bots/bot.py, serving on a port of its own, saying 1 kHz for 2 s to every stream.
struct Bot {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Bot {
    fn start() -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port("127.0.0.1");
        let mut child = Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bots/bot.py"))
            .args([
                &port.to_string(),
                dir.path().to_str().unwrap(),
                "1000",
                "2000",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the bot starts");
        Bot { child, dir, port }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/bot", self.port)
    }

    /// What the bot heard on call `call_id` (samples at the stream's rate) and every message
    /// it got, once the stream ended.
    fn heard(&self, call_id: &str) -> (Vec<i16>, Vec<Value>) {
        let path = |ext: &str| -> PathBuf { self.dir.path().join(format!("{call_id}.{ext}")) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path("done").exists() {
            assert!(
                Instant::now() < deadline,
                "the bot's stream of {call_id} never ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let raw = std::fs::read(path("raw")).unwrap();
        let samples = raw
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let events = std::fs::read_to_string(path("jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (samples, events)
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A track codec as srtpd, ffmpeg and an SDP name it.
struct Codec {
    payload_type: u8,
    clock_rate: u32,
    ffmpeg: &'static [&'static str],
    rtpmap: &'static str,
    pkt_size: u32,
}

const OPUS: Codec = Codec {
    payload_type: 111,
    clock_rate: 48_000,
    ffmpeg: &[
        "-c:a",
        "libopus",
        "-b:a",
        "48k",
        "-frame_duration",
        "20",
        "-application",
        "voip",
        "-ar",
        "48000",
        "-ac",
        "1",
    ],
    rtpmap: "opus/48000/2",
    pkt_size: 1200,
};

const PCMU: Codec = Codec {
    payload_type: 0,
    clock_rate: 8_000,
    ffmpeg: &["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"],
    rtpmap: "PCMU/8000",
    // 20 ms packets: 12 bytes of header and 160 of µ-law.
    pkt_size: 172,
};

fn key(d: u8) -> String {
    B64.encode(
        (0..30u8)
            .map(|i| i.wrapping_mul(11) ^ d)
            .collect::<Vec<u8>>(),
    )
}

fn start_params(call_id: &str, codec: &Codec, candidates: Value, bridge: Value) -> Value {
    json!({
        "call_id": call_id, "bind": "127.0.0.1", "candidates": candidates,
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": key(1), "rx": key(2)},
        "audio": {"payload_type": codec.payload_type, "clock_rate": codec.clock_rate},
        "bridge": bridge,
    })
}

/// The bot says 1 kHz; ffmpeg, the call's peer, decodes what srtpd sends to 1 kHz.
fn the_peer_hears_the_bot(client: &mut Client, bot: &Bot, codec: &Codec, bridge: &Value, id: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port("127.0.0.1") & !1;
    let wav = dir.path().join("heard.wav");
    let ff = common::ffmpeg_srtp_receiver(
        dir.path(),
        port,
        codec.payload_type,
        codec.rtpmap,
        &key(1),
        "1.5",
        &wav,
    );
    let mut b = bridge.clone();
    b["url"] = json!(bot.url());
    client.ok(
        "call.start",
        start_params(id, codec, json!([{"ip": "127.0.0.1", "port": port}]), b),
    );
    let out = common::wait_for_child(ff, Duration::from_secs(15));
    assert!(
        out.status.success(),
        "{id}: ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heard = srtpd::media::wav::WavClip::load(&wav).unwrap().samples;
    assert!(heard.len() >= 48_000, "{id}: {} samples", heard.len());
    let f = dominant(&heard[12_000..60_000.min(heard.len())], 48_000, 900..=1_100);
    assert!((998..=1_002).contains(&f), "{id}: the peer hears {f} Hz");
    // The bot's mark comes back once its 2 s have been sent; then the stream stops.
    std::thread::sleep(Duration::from_millis(1_000));
    client.ok("call.terminate", json!({"call_id": id}));
    let (_, events) = bot.heard(id);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"mark"), "{id}: {names:?}");
    assert_eq!(names.last(), Some(&"stop"), "{id}");
    let numbers: Vec<u64> = events
        .iter()
        .filter_map(|e| e["sequenceNumber"].as_str().map(|s| s.parse().unwrap()))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "{id}: every message numbered in turn"
    );
}

/// ffmpeg sends 440 Hz; the bot hears it, at its stream's rate.
fn the_bot_hears_the_peer(
    client: &mut Client,
    bot: &Bot,
    codec: &Codec,
    bridge: &Value,
    id: &str,
    rate: u32,
) {
    let mut b = bridge.clone();
    b["url"] = json!(bot.url());
    let r = client.ok("call.start", start_params(id, codec, json!([]), b));
    let local = addr(&r["local"]);
    let mut args = codec.ffmpeg.to_vec();
    let pt = codec.payload_type.to_string();
    args.extend(["-payload_type", pt.as_str()]);
    common::ffmpeg_srtp_tone(3, &args, &key(2), local, codec.pkt_size);
    let stats = client.ok("call.stats", json!({"call_id": id}));
    client.ok("call.terminate", json!({"call_id": id}));
    let (heard, events) = bot.heard(id);
    assert_eq!(
        events[0]["event"],
        if rate == 8_000 && bridge["format"] == "twilio" {
            "connected"
        } else {
            "start"
        }
    );
    let frame = rate as usize / 50;
    // From 0.3 s (the jitter buffer's delay and the codec's) to 2.5 s.
    let middle = &heard[frame * 15..(frame * 125).min(heard.len())];
    assert!(
        middle.len() >= frame * 100,
        "{id}: the bot heard {} samples: {stats}",
        heard.len()
    );
    let frames = middle.chunks(frame).count();
    let loud = middle
        .chunks(frame)
        .filter(|f| f.iter().any(|s| s.unsigned_abs() > 1_000))
        .count();
    assert!(
        loud * 100 >= frames * 95,
        "{id}: {loud} of {frames} frames carry the tone: {stats}"
    );
    let f = dominant(
        &middle[..(rate as usize).min(middle.len())],
        rate,
        400..=480,
    );
    assert!((438..=442).contains(&f), "{id}: the bot hears {f} Hz");
}

in_both_layouts! {
    #[ignore = "needs ffmpeg and python3 with websockets; run by .ci/run"]
    fn a_bot_hears_the_peer_and_the_peer_hears_the_bot(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let bot = Bot::start();
        for (n, (codec, bridge, rate)) in [
            (&OPUS, json!({"format": "twilio"}), 8_000),
            (&OPUS, json!({"format": "l16", "rate": 16_000}), 16_000),
            (&OPUS, json!({"format": "l16", "rate": 48_000}), 48_000),
            (&PCMU, json!({"format": "twilio"}), 8_000),
        ]
        .into_iter()
        .enumerate()
        {
            the_bot_hears_the_peer(&mut client, &bot, codec, &bridge, &format!("IN-{n}"), rate);
            the_peer_hears_the_bot(&mut client, &bot, codec, &bridge, &format!("OUT-{n}"));
        }
    }
}
