//! What a muted or video-off track puts on the wire, counted at an independent peer, and
//! measured from the packets' own sequence numbers and timestamps.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Client, Layout, TestDaemon, addr};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::{Value, json};
use webrtc_srtp::protection_profile::ProtectionProfile;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CALL: &str = "GATE-1";
const SAMPLES: u32 = 960; // 20 ms at 48 kHz

fn setup(layout: Layout, mute_mode: &str, video: bool) -> (TestDaemon, Client, Peer, Value) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    client.ok("events.subscribe", json!({}));
    let (ours, theirs) = ([1u8; 30], [2u8; 30]);
    let peer = Peer::new(
        "127.0.0.1",
        ProtectionProfile::Aes128CmHmacSha1_80,
        &theirs,
        &ours,
        16,
    );
    let mut params = json!({
        "call_id": CALL, "bind": "127.0.0.1", "mute_mode": mute_mode,
        "candidates": [{"ip": "127.0.0.1", "port": peer.addr().port()}],
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": B64.encode(ours), "rx": B64.encode(theirs)},
        "audio": {"payload_type": 111, "clock_rate": 48000, "ptime_ms": 20, "source": {"kind": "rtp"}},
    });
    if video {
        params["video"] =
            json!({"payload_type": 97, "clock_rate": 90000, "source": {"kind": "rtp"}});
    }
    let r = client.ok("call.start", params);
    (daemon, client, peer, r)
}

/// Feeds 20 ms audio packets (timestamps on the 48 kHz clock) in real time, paced by absolute
/// deadlines, muting after `before` packets for `muted` packets' worth of time. Returns the
/// measured mute duration.
fn feed_with_mute(
    client: &mut Client,
    source: SocketAddr,
    before: u32,
    muted: u32,
    after: u32,
) -> Duration {
    let producer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let mut mute_started = None;
    let mut mute_len = Duration::ZERO;
    for i in 0..before + muted + after {
        if i == before {
            client.ok(
                "call.mute",
                json!({"call_id": CALL, "media": "audio", "muted": true}),
            );
            mute_started = Some(Instant::now());
        }
        if i == before + muted {
            client.ok(
                "call.mute",
                json!({"call_id": CALL, "media": "audio", "muted": false}),
            );
            mute_len = mute_started.unwrap().elapsed();
        }
        producer
            .send_to(
                &rtp_packet(96, i as u16, i * SAMPLES, 0x77, &[0x55; 80]),
                source,
            )
            .unwrap();
        let due = start + Duration::from_millis(20 * u64::from(i + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    mute_len
}

fn fields(p: &[u8]) -> (u16, u32, bool, Vec<u8>) {
    (
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        p[1] & 0x80 != 0,
        p[12..].to_vec(),
    )
}

fn audio(peer: &Peer) -> Vec<(u16, u32, bool, Vec<u8>)> {
    peer.seen
        .rtp
        .iter()
        .filter(|p| p[1] & 0x7f == 111)
        .map(|p| fields(p))
        .collect()
}

fn assert_gap_free(packets: &[(u16, u32, bool, Vec<u8>)]) {
    for w in packets.windows(2) {
        assert_eq!(
            w[1].0,
            w[0].0.wrapping_add(1),
            "sequence gap between {} and {}",
            w[0].0,
            w[1].0
        );
    }
}

in_both_layouts! {
fn drop_mode_sends_nothing_while_muted_and_keeps_sequence_and_clock(layout: Layout) {
    let (_d, mut client, mut peer, r) = setup(layout, "drop", false);
    let source = addr(&r["audio"]["source"]);
    let mute = std::thread::scope(|s| {
        s.spawn(|| peer.pump(Duration::from_millis(2600), usize::MAX));
        feed_with_mute(&mut client, source, 25, 50, 25)
    });
    let got = audio(&peer);
    assert!(
        got.iter().all(|p| p.3 == [0x55; 80]),
        "only source audio in drop mode"
    );
    assert!(
        (45..=55).contains(&(100 - got.len())),
        "{} packets dropped by a 1 s mute",
        100 - got.len()
    );
    assert_gap_free(&got);
    let (at, jump) = got
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1].1.wrapping_sub(w[0].1)))
        .max_by_key(|&(_, j)| j)
        .unwrap();
    let expected = mute.as_secs_f64() * 48000.0 + f64::from(SAMPLES);
    assert!(
        (f64::from(jump) - expected).abs() <= f64::from(SAMPLES),
        "timestamp jump {jump}, muted {mute:?}"
    );
    assert!(got[at].2, "marker on the first packet after unmute");
    assert_eq!(got.iter().filter(|p| p.2).count(), 1, "no other markers");
}
}

in_both_layouts! {
fn silence_mode_sends_only_silence_at_the_packet_time(layout: Layout) {
    let (_d, mut client, mut peer, r) = setup(layout, "silence", false);
    let source = addr(&r["audio"]["source"]);
    let mute = std::thread::scope(|s| {
        s.spawn(|| peer.pump(Duration::from_millis(2600), usize::MAX));
        feed_with_mute(&mut client, source, 25, 50, 25)
    });
    let got = audio(&peer);
    assert_gap_free(&got);
    let first_silence = got
        .iter()
        .position(|p| p.3 == srtpd::call::OPUS_SILENCE)
        .expect("silence frames");
    let resumed = got
        .iter()
        .rposition(|p| p.3 == srtpd::call::OPUS_SILENCE)
        .unwrap()
        + 1;
    let silence = &got[first_silence..resumed];
    assert!(
        silence.iter().all(|p| p.3 == srtpd::call::OPUS_SILENCE),
        "only silence while muted"
    );
    let expected = (mute.as_secs_f64() / 0.020).round() as i64;
    assert!(
        (silence.len() as i64 - expected).abs() <= 2,
        "{} silence frames for a mute of {mute:?}",
        silence.len()
    );
    assert!(
        silence
            .windows(2)
            .all(|w| w[1].1.wrapping_sub(w[0].1) == SAMPLES),
        "silence one packet time apart"
    );
    // Around the mute, the timestamp keeps the clock within one packet.
    for (before, after) in [(first_silence - 1, first_silence), (resumed - 1, resumed)] {
        let step = got[after].1.wrapping_sub(got[before].1);
        assert!(
            step.abs_diff(SAMPLES) <= SAMPLES,
            "timestamp step {step} at packet {after}"
        );
    }
    assert!(got[resumed].2, "marker on the first packet after unmute");
    assert_eq!(&got[resumed].3, &[0x55; 80]);
}
}

in_both_layouts! {
fn video_off_sends_no_video_and_video_on_asks_for_a_keyframe(layout: Layout) {
    let (_d, mut client, mut peer, r) = setup(layout, "drop", true);
    let video_source = addr(&r["video"]["source"]);
    let producer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send_video = |from: u16, n: u16| {
        for i in from..from + n {
            producer
                .send_to(
                    &rtp_packet(100, i, u32::from(i) * 3000, 9, &[0x66; 300]),
                    video_source,
                )
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    send_video(0, 20);
    peer.pump(Duration::from_secs(1), 20);
    client.ok("call.video", json!({"call_id": CALL, "enabled": false}));
    send_video(20, 30);
    peer.pump(Duration::from_millis(400), usize::MAX);
    let video = |peer: &Peer| {
        peer.seen
            .rtp
            .iter()
            .filter(|p| p[1] & 0x7f == 97)
            .map(|p| fields(p))
            .collect::<Vec<_>>()
    };
    assert_eq!(video(&peer).len(), 20, "video left while off");

    client.ok("call.video", json!({"call_id": CALL, "enabled": true}));
    let event = client
        .wait_event("track.keyframe_needed", Some(CALL), Duration::from_secs(1))
        .expect("keyframe event");
    assert_eq!(event["media"], "video");
    send_video(50, 10);
    peer.pump(Duration::from_secs(1), 30);
    let v = video(&peer);
    assert_eq!(v.len(), 30);
    assert!(v[20].2, "marker on the first video packet after video on");
    assert_gap_free(&v);
}
}

in_both_layouts! {
fn peer_state_is_recorded_and_reported(layout: Layout) {
    let (_d, mut client, _peer, _r) = setup(layout, "drop", false);
    let r = client.ok(
        "call.peer_state",
        json!({"call_id": CALL, "hold": true, "video": false}),
    );
    assert_eq!(
        (r["peer_muted"].clone(), r["peer_video"].clone()),
        (json!(true), json!(false))
    );
    let stats = client.ok("call.stats", json!({"call_id": CALL}));
    assert_eq!(stats["peer_muted"], true);
    assert_eq!(
        client
            .call("call.peer_state", json!({"call_id": CALL}))
            .unwrap_err()
            .0,
        -32602
    );
    assert_eq!(
        client
            .call("call.peer_state", json!({"call_id": "x", "muted": true}))
            .unwrap_err()
            .0,
        -32001
    );
}
}
