//! The bot bridge end to end, with peers nobody here wrote: ffmpeg sends a 440 Hz tone over
//! SRTP (Opus, or PCMU) into srtpd, and a bot on Python's `websockets` hears it in each
//! dialect (Twilio µ-law 8 kHz, L16 at 16 and 48 kHz); the bot says a 1 kHz tone, and ffmpeg
//! decodes srtpd's SRTP to it. Needs ffmpeg and python3 with `websockets`, so it is ignored by
//! a plain `cargo test`; .ci/run installs both and runs it with `cargo test -- --ignored`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::bot::Bot;
use common::daemon::{Client, TestDaemon, addr, free_port};
use common::tone::dominant;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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

/// A deterministic pseudo-random number for packet `k` and purpose `salt`, in 0..n.
fn chance(k: u32, salt: u32, n: u32) -> u32 {
    k.wrapping_mul(2_654_435_761)
        .wrapping_add(salt.wrapping_mul(40_503))
        .rotate_left(13)
        % n
}

in_both_layouts! {
    #[ignore = "needs python3 with websockets; run by .ci/run"]
    fn a_bad_network_leaves_the_bots_audio_continuous_and_its_digits_once(layout: Layout) {
        use common::peer::Peer;
        use srtpd::media::codec::{AudioEncoder, CodecKind};
        use webrtc_srtp::protection_profile::ProtectionProfile;

        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let bot = Bot::start();
        let raw_key = |d: u8| (0..30u8).map(|i| i.wrapping_mul(11) ^ d).collect::<Vec<u8>>();
        let mut peer = Peer::new("127.0.0.1", ProtectionProfile::Aes128CmHmacSha1_80, &raw_key(2), &raw_key(1), 16);
        let r = client.ok(
            "call.start",
            start_params(
                "NET-1",
                &OPUS,
                json!([{"ip": "127.0.0.1", "port": peer.addr().port()}]),
                json!({"url": bot.url(), "format": "l16", "rate": 16_000}),
            ),
        );
        let local = addr(&r["local"]);
        // 3 s of 440 Hz in Opus (in-band FEC on), sent 20 ms apart with up to 40 ms of
        // jitter; 2% never sent, 5% swapped with the next.
        let mut enc = AudioEncoder::new(CodecKind::Opus).unwrap();
        let mut packets: Vec<(u64, u16, Vec<u8>)> = Vec::new();
        let mut dropped = 0;
        for k in 0..150u32 {
            let pcm = common::tone::tone(440.0, 48_000, 960, k as usize * 960);
            let mut p = [0u8; 1500];
            let n = enc.encode(&pcm, &mut p).unwrap();
            if chance(k, 1, 50) == 0 {
                dropped += 1;
                continue;
            }
            let mut at = 20 * u64::from(k) + u64::from(chance(k, 2, 41));
            if chance(k, 3, 20) == 0 {
                at += 25;
            }
            packets.push((at, k as u16, p[..n].to_vec()));
        }
        packets.sort_by_key(|p| p.0);
        let t0 = Instant::now();
        for (at, k, payload) in &packets {
            let due = t0 + Duration::from_millis(*at);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let plain = common::rtp_packet(111, *k, u32::from(*k) * 960, 0x4e7, payload);
            peer.send_rtp(&plain, local);
        }
        // Then the digits 4 and 2, each as RFC 4733 sends them (three end packets).
        let mut seq = 150u16;
        for (n, event) in [4u8, 2].into_iter().enumerate() {
            let ts = 150 * 960 + n as u32 * 9_600;
            for k in 1..=6u16 {
                let d = (k.min(4) * 960).to_be_bytes();
                let end = if k >= 4 { 0x80 } else { 0 };
                peer.send_rtp(&common::rtp_packet(101, seq, ts, 0x4e7, &[event, end | 10, d[0], d[1]]), local);
                seq += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let stats = client.ok("call.stats", json!({"call_id": "NET-1"}));
        client.ok("call.terminate", json!({"call_id": "NET-1"}));
        let (heard, events) = bot.heard("NET-1");
        let frame = 320;
        // From 0.5 s (after the jitter buffer's delay) to 2.8 s: every frame carries the tone
        // but those a loss cost, one concealed frame each at most.
        let middle = &heard[frame * 25..(frame * 140).min(heard.len())];
        let frames = middle.chunks(frame).count();
        let quiet = middle.chunks(frame).filter(|f| f.iter().all(|s| s.unsigned_abs() < 1_000)).count();
        assert!(frames >= 110, "{frames} frames: {stats}");
        assert!(quiet <= dropped, "{quiet} quiet frames for {dropped} losses: {stats}");
        let longest_quiet_run = middle
            .chunks(frame)
            .map(|f| f.iter().all(|s| s.unsigned_abs() < 1_000))
            .fold((0, 0), |(run, most), q| if q { (run + 1, most.max(run + 1)) } else { (0, most) })
            .1;
        assert!(longest_quiet_run <= 1, "a gap of {longest_quiet_run} frames: {stats}");
        let jitter = &stats["bridge"]["jitter"];
        let lost = jitter["lost"].as_u64().unwrap();
        assert!(lost >= dropped as u64, "{lost} lost, {dropped} dropped: {stats}");
        let made_up = jitter["recovered"].as_u64().unwrap() + jitter["concealed"].as_u64().unwrap();
        assert!(made_up >= lost, "{stats}");
        let digits: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "dtmf")
            .map(|e| e["dtmf"]["digit"].as_str().unwrap())
            .collect();
        assert_eq!(digits, ["4", "2"], "once per digit");
    }
}
