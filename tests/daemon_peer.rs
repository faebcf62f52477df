//! srtpd against an independent peer written with webrtc-srtp: interop both ways, candidate
//! selection by STUN, latching only on authenticated packets, mute, and terminate.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use base64::Engine;
use common::daemon::{Client, Layout, TestDaemon, addr, udp};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::{Value, json};
use webrtc_srtp::protection_profile::ProtectionProfile;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CALL: &str = "CALL-PEER";

struct Keys {
    ours: Vec<u8>,
    theirs: Vec<u8>,
}

fn keys(len: usize) -> Keys {
    Keys {
        ours: (0..len as u8).map(|i| i.wrapping_mul(13) ^ 0x5a).collect(),
        theirs: (0..len as u8).map(|i| i.wrapping_mul(29) ^ 0xa5).collect(),
    }
}

fn start_call(
    client: &mut Client,
    profile: &str,
    k: &Keys,
    candidates: Value,
    sink: Option<SocketAddr>,
) -> Value {
    client.ok(
        "call.start",
        json!({
            "call_id": CALL,
            "bind": "127.0.0.1",
            "candidates": candidates,
            "keying": {"scheme": "sdes", "profile": profile, "tx": B64.encode(&k.ours), "rx": B64.encode(&k.theirs)},
            // These tests check the drop mode: nothing of a muted track on the wire.
            "mute_mode": "drop",
            "audio": {
                "payload_type": 111, "clock_rate": 48000,
                "source": {"kind": "rtp"},
                "sink": match sink { Some(a) => json!({"kind": "rtp", "forward": a}), None => json!({"kind": "none"}) },
            },
        }),
    )
}

/// A daemon (with `config` added to the test config) with one SDES call whose only candidate
/// is a webrtc-srtp peer; returns the daemon, a client, the peer and the call.start result.
fn call_with_peer(
    layout: Layout,
    answer_stun: bool,
    config: &str,
) -> (TestDaemon, Client, Peer, Value) {
    let daemon = TestDaemon::start_with(layout, config);
    let mut client = daemon.client();
    let k = keys(30);
    let mut peer = Peer::new(
        "127.0.0.1",
        ProtectionProfile::Aes128CmHmacSha1_80,
        &k.theirs,
        &k.ours,
        16,
    );
    peer.answer_stun = answer_stun;
    let r = start_call(
        &mut client,
        "AES_CM_128_HMAC_SHA1_80",
        &k,
        json!([{"ip": "127.0.0.1", "port": peer.addr().port()}]),
        None,
    );
    (daemon, client, peer, r)
}

fn feed(source: SocketAddr, first_seq: u16, count: usize) {
    let producer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..count {
        let seq = first_seq.wrapping_add(i as u16);
        let p = rtp_packet(96, seq, u32::from(seq) * 960, 0x1234, &[seq as u8; 80]);
        producer.send_to(&p, source).unwrap();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn audio_packets(peer: &Peer) -> Vec<&Vec<u8>> {
    peer.seen
        .rtp
        .iter()
        .filter(|p| p[1] & 0x7f == 111)
        .collect()
}

in_both_layouts! {
fn interop_with_a_webrtc_srtp_peer_both_ways(layout: Layout) {
    for (profile, theirs, key_len, total) in [
        (
            "AES_CM_128_HMAC_SHA1_80",
            ProtectionProfile::Aes128CmHmacSha1_80,
            16,
            30,
        ),
        ("AEAD_AES_128_GCM", ProtectionProfile::AeadAes128Gcm, 16, 28),
    ] {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let k = keys(total);
        let mut peer = Peer::new("127.0.0.1", theirs, &k.theirs, &k.ours, key_len);
        let sink = udp("127.0.0.1");
        let r = start_call(
            &mut client,
            profile,
            &k,
            json!([{"ip": "127.0.0.1", "port": peer.addr().port()}]),
            Some(sink.local_addr().unwrap()),
        );
        let (local, source) = (addr(&r["local"]), addr(&r["audio"]["source"]));

        feed(source, 100, 200);
        peer.pump(Duration::from_secs(3), 200);
        let got = audio_packets(&peer);
        assert_eq!(
            got.len(),
            200,
            "{profile}: peer decrypted {} of 200",
            got.len()
        );
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, p)| p[12..] == [(100 + i) as u8; 80]),
            "{profile}"
        );
        assert_eq!(peer.seen.undecryptable, 0, "{profile}");

        let sent: Vec<Vec<u8>> = (0..200u16)
            .map(|i| {
                rtp_packet(
                    111,
                    5000 + i,
                    u32::from(i) * 960,
                    0xfeed,
                    &[i as u8 ^ 0x33; 64],
                )
            })
            .collect();
        let received = std::thread::scope(|s| {
            let r = s.spawn(|| common::daemon::receive_all(&sink, 200, Duration::from_secs(2)));
            for (i, p) in sent.iter().enumerate() {
                peer.send_rtp(p, local);
                if i % 20 == 19 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            r.join().unwrap()
        });
        let received: Vec<Vec<u8>> = received.into_iter().map(|(d, _)| d).collect();
        assert_eq!(
            received, sent,
            "{profile}: the sink got other bytes than the peer sent"
        );
    }
}
}

in_both_layouts! {
fn the_candidate_answering_stun_wins_and_forged_packets_move_nothing(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    client.ok("events.subscribe", json!({}));
    let k = keys(30);
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let mut live = Peer::new("127.0.0.1", profile, &k.theirs, &k.ours, 16);
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let r = start_call(
        &mut client,
        "AES_CM_128_HMAC_SHA1_80",
        &k,
        json!([
            {"ip": "127.0.0.1", "port": dead_addr.port(), "priority": 100},
            {"ip": "127.0.0.1", "port": live.addr().port(), "priority": 1},
        ]),
        None,
    );
    let local = addr(&r["local"]);
    assert_eq!(
        client.ok("call.stats", json!({"call_id": CALL}))["remote"],
        json!(dead_addr),
        "highest priority first"
    );

    live.pump(Duration::from_millis(500), 1);
    assert!(
        live.seen.stun_requests >= 1,
        "the live candidate was checked"
    );
    let connected = client
        .wait_event("call.connected", Some(CALL), Duration::from_secs(3))
        .expect("call.connected");
    assert_eq!(connected["remote"], json!(live.addr()));
    assert_eq!(connected["via"], "stun");
    let switched = client
        .wait_event("call.remote_changed", Some(CALL), Duration::from_secs(1))
        .expect("call.remote_changed from the first choice to the answering candidate");
    assert_eq!(
        (&switched["from"], &switched["remote"]),
        (&json!(dead_addr), &json!(live.addr()))
    );
    assert_eq!(
        client.ok("call.stats", json!({"call_id": CALL}))["remote"],
        json!(live.addr())
    );
    // The dead candidate was sent checks too.
    dead.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(dead.recv_from(&mut [0u8; 1500]).is_ok());

    // Packets with a bad tag, from the live candidate or from a third address, change
    // nothing; they are the call's auth failures (no media has come yet: a stream from
    // anywhere may be the peer's).
    let unclaimed = |client: &mut Client| -> u64 {
        client.ok("daemon.status", json!({}))["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["unclaimed"].as_u64().unwrap())
            .sum()
    };
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut forger = Peer::new("127.0.0.1", profile, &k.ours, &k.theirs, 16);
    let mut forged = |seq: u16, ssrc: u32| {
        let plain = rtp_packet(111, seq, 0, ssrc, &[1; 40]);
        forger.send_rtp(&plain, forger.addr());
        let mut b = [0u8; 2048];
        let (n, _) = forger.socket.recv_from(&mut b).unwrap();
        let mut wire = b[..n].to_vec();
        let last = wire.len() - 1;
        wire[last] ^= 0xff;
        wire
    };
    for i in 0..40u16 {
        let from = if i < 20 { &attacker } else { &live.socket };
        from.send_to(&forged(9000 + i, 0xbad), local).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let stats = client.ok("call.stats", json!({"call_id": CALL}));
    assert_eq!(
        stats["remote"],
        json!(live.addr()),
        "a forged packet moved the remote"
    );
    assert_eq!(stats["audio"]["dropped"]["auth"], 40, "{stats}");

    // An authenticated packet from a new address does move it (NAT rebinding).
    let mut moved = Peer::new("127.0.0.1", profile, &k.theirs, &k.ours, 16);
    moved.send_rtp(&rtp_packet(111, 1, 0, 0xfeed, &[2; 40]), local);
    let changed = client
        .wait_event("call.remote_changed", Some(CALL), Duration::from_secs(2))
        .expect("call.remote_changed");
    assert_eq!(changed["remote"], json!(moved.addr()));

    // Now that the peer's stream is known, a stream nobody has seen from a third address is
    // not the call's: dropped unread and counted as unclaimed. From the remote, or with the
    // peer's SSRC, a forgery is still the call's.
    let unclaimed_before = unclaimed(&mut client);
    for i in 0..10u16 {
        attacker.send_to(&forged(9100 + i, 0xbad), local).unwrap();
        moved.socket.send_to(&forged(9200 + i, 0xbad), local).unwrap();
        attacker.send_to(&forged(9300 + i, 0xfeed), local).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let stats = client.ok("call.stats", json!({"call_id": CALL}));
    assert_eq!(stats["remote"], json!(moved.addr()));
    assert_eq!(stats["audio"]["dropped"]["auth"], 60, "{stats}");
    assert_eq!(unclaimed(&mut client) - unclaimed_before, 10);
    assert_eq!(changed["via"], "media");
}
}

in_both_layouts! {
fn a_candidate_that_never_answers_stun_keeps_the_media(layout: Layout) {
    let (_daemon, mut client, mut relay, r) = call_with_peer(layout, false, "");
    // Media flows to the only candidate from the first packet, before any check answered.
    feed(addr(&r["audio"]["source"]), 1, 50);
    relay.pump(Duration::from_secs(2), 50);
    assert_eq!(audio_packets(&relay).len(), 50);
    let stats = client.ok("call.stats", json!({"call_id": CALL}));
    assert_eq!(stats["remote"], json!(relay.addr()));
    assert_eq!(stats["state"], "checking");
}
}

in_both_layouts! {
fn without_candidates_the_first_authenticated_packet_decides(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let k = keys(30);
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let r = start_call(&mut client, "AES_CM_128_HMAC_SHA1_80", &k, json!([]), None);
    let local = addr(&r["local"]);
    assert_eq!(
        client.ok("call.stats", json!({"call_id": CALL}))["state"],
        "waiting"
    );

    // A stranger with the wrong key is ignored.
    let mut stranger = Peer::new("127.0.0.1", profile, &k.ours, &k.ours, 16);
    stranger.send_rtp(&rtp_packet(111, 1, 0, 7, &[0; 20]), local);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        client.ok("call.stats", json!({"call_id": CALL}))["remote"],
        Value::Null
    );

    let mut peer = Peer::new("127.0.0.1", profile, &k.theirs, &k.ours, 16);
    peer.send_rtp(&rtp_packet(111, 1, 0, 7, &[0; 20]), local);
    std::thread::sleep(Duration::from_millis(100));
    let stats = client.ok("call.stats", json!({"call_id": CALL}));
    assert_eq!(stats["remote"], json!(peer.addr()));
    assert_eq!(stats["state"], "connected");

    feed(addr(&r["audio"]["source"]), 1, 30);
    peer.pump(Duration::from_secs(2), 30);
    assert_eq!(audio_packets(&peer).len(), 30);
}
}

in_both_layouts! {
fn muting_audio_stops_it_on_the_wire_and_unmuting_resumes_it(layout: Layout) {
    let (_daemon, mut client, mut peer, r) = call_with_peer(layout, true, "");
    let source = addr(&r["audio"]["source"]);

    feed(source, 0, 50);
    peer.pump(Duration::from_secs(2), 50);
    assert_eq!(audio_packets(&peer).len(), 50);

    client.ok(
        "call.mute",
        json!({"call_id": CALL, "media": "audio", "muted": true}),
    );
    feed(source, 50, 50);
    peer.pump(Duration::from_millis(600), usize::MAX);
    assert_eq!(audio_packets(&peer).len(), 50, "audio left while muted");
    assert!(
        client.ok("call.stats", json!({"call_id": CALL}))["audio"]["muted"]
            .as_bool()
            .unwrap()
    );

    client.ok(
        "call.mute",
        json!({"call_id": CALL, "media": "audio", "muted": false}),
    );
    feed(source, 100, 50);
    peer.pump(Duration::from_secs(2), 100);
    let got = audio_packets(&peer);
    assert_eq!(got.len(), 100);
    let seqs: Vec<u16> = got
        .iter()
        .map(|p| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "sequence gap across the mute"
    );
    assert!(
        got[50][1] & 0x80 != 0,
        "marker on the first packet after unmute"
    );

    let err = client
        .call(
            "call.mute",
            json!({"call_id": CALL, "media": "video", "muted": true}),
        )
        .unwrap_err();
    assert_eq!(err.0, -32602, "{err:?}");
}
}

in_both_layouts! {
fn terminate_returns_final_stats_and_frees_the_port(layout: Layout) {
    let (_daemon, mut client, mut peer, r) = call_with_peer(layout, true, "");
    client.ok("events.subscribe", json!({}));
    let local = addr(&r["local"]);
    feed(addr(&r["audio"]["source"]), 0, 20);
    for i in 0..10u16 {
        peer.send_rtp(&rtp_packet(111, i, 0, 5, &[3; 30]), local);
    }
    peer.pump(Duration::from_secs(2), 20);
    std::thread::sleep(Duration::from_millis(100));

    let stats = client.ok(
        "call.terminate",
        json!({"call_id": CALL, "reason": "hangup"}),
    );
    assert_eq!(stats["audio"]["sent"]["packets"], 20);
    assert_eq!(stats["audio"]["received"]["packets"], 10);
    let ended = client
        .wait_event("call.ended", Some(CALL), Duration::from_secs(2))
        .expect("call.ended");
    assert_eq!(ended["reason"], "hangup");
    assert_eq!(ended["stats"]["audio"]["sent"]["packets"], 20);

    // The call is gone, and so is its port (its own), or its place on the shared port.
    std::thread::sleep(Duration::from_millis(100));
    match layout {
        Layout::PerCall => {
            let rebound = UdpSocket::bind(local).expect("the media port was released");
            drop(rebound);
        }
        Layout::Shared => {
            let status = client.ok("daemon.status", json!({}));
            let workers = status["workers"].as_array().unwrap();
            assert!(workers.iter().all(|w| w["calls"] == 0), "{status}");
            // Its stream on the shared port finds no call.
            peer.send_rtp(&rtp_packet(111, 10, 0, 5, &[3; 30]), local);
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let unclaimed = loop {
                let status = client.ok("daemon.status", json!({}));
                let n: u64 = status["workers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w["unclaimed"].as_u64().unwrap())
                    .sum();
                if n > 0 || std::time::Instant::now() > deadline {
                    break n;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            assert_eq!(unclaimed, 1);
        }
    }
    assert_eq!(
        client
            .call("call.stats", json!({"call_id": CALL}))
            .unwrap_err()
            .0,
        -32001
    );
    assert_eq!(client.ok("daemon.status", json!({}))["calls"], 0);
    assert_eq!(client.ok("call.list", json!({})), json!([]));
}
}

in_both_layouts! {
fn srtcp_reports_decrypt_at_a_webrtc_srtp_peer(layout: Layout) {
    let (_daemon, _client, mut peer, _r) = call_with_peer(layout, true, "");
    // The test config sends RTCP every 500 ms.
    peer.pump(Duration::from_millis(2600), usize::MAX);
    assert!(
        peer.seen.rtcp >= 3,
        "SRTCP reports decrypted by webrtc-srtp: {:?}",
        peer.seen
    );
    assert_eq!(peer.seen.undecryptable, 0, "{:?}", peer.seen);
    assert!(
        peer.seen.stun_requests >= 1,
        "candidate checks: {:?}",
        peer.seen
    );
}
}

in_both_layouts! {
fn keepalives_go_out_while_muted(layout: Layout) {
    let config = "[calls]\nkeepalive_interval_ms = 200\nrtcp_interval_ms = 60000\n";
    let (_daemon, mut client, mut peer, r) = call_with_peer(layout, true, config);
    client.ok(
        "call.mute",
        json!({"call_id": CALL, "media": "audio", "muted": true}),
    );
    feed(addr(&r["audio"]["source"]), 0, 20);
    peer.pump(Duration::from_millis(1100), usize::MAX);
    assert!(audio_packets(&peer).is_empty());
    assert!(
        peer.seen.stun_other >= 3,
        "STUN Binding indications while muted: {:?}",
        peer.seen
    );
}
}

in_both_layouts! {
fn silence_from_the_peer_raises_media_timeout(layout: Layout) {
    let config = "[calls]\nmedia_timeout_s = 1\nrtcp_interval_ms = 60000\n";
    let (_daemon, mut client, mut peer, r) = call_with_peer(layout, true, config);
    client.ok("events.subscribe", json!({}));
    peer.send_rtp(&rtp_packet(111, 1, 0, 9, &[0; 20]), addr(&r["local"]));
    let timeout = client
        .wait_event("call.media_timeout", Some(CALL), Duration::from_secs(3))
        .expect("call.media_timeout");
    assert_eq!(timeout["peer_muted"], false);
    assert!(timeout["silent_s"].as_u64().unwrap() >= 1);
}
}
