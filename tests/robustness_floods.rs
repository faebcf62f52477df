//! Floods at a live call through the real binary, in both socket layouts, bounded in packets
//! and time, on loopback: garbage, SRTP-looking packets of random SSRCs (which only trial
//! authentication could match to a waiting call), forgeries of the live stream's SSRC, STUN
//! and RTCP. The live call keeps every genuine packet; the flood's cost is bounded and counted.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Client, TestDaemon, addr, receive_all, udp};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::{Value, json};
use webrtc_srtp::protection_profile::ProtectionProfile;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Calls that wait for a first packet, with no candidates: any stream may be theirs.
const WAITING: usize = 300;
/// Flood datagrams: 15,000 a second for one second.
const FLOOD: usize = 15_000;
/// Genuine packets of the live call, spread through the flood.
const GENUINE: usize = 200;

fn key(i: usize, d: u8) -> Vec<u8> {
    (0..30u8)
        .map(|j| {
            j.wrapping_mul(13) ^ (i as u8).wrapping_mul(11) ^ d.wrapping_mul(0x3c) ^ (i >> 8) as u8
        })
        .collect()
}

fn start(
    client: &mut Client,
    id: &str,
    i: usize,
    candidates: Value,
    sink: Option<SocketAddr>,
) -> Value {
    let sink = match sink {
        Some(s) => json!({"kind": "rtp", "forward": s}),
        None => json!({"kind": "none"}),
    };
    client.ok(
        "call.start",
        json!({
            "call_id": id, "mute_mode": "drop", "candidates": candidates,
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(i, 0)), "rx": B64.encode(key(i, 1))},
            "audio": {"payload_type": 111, "clock_rate": 48000, "sink": sink},
        }),
    )
}

/// Starts call 0, `id`, with an independent peer as its candidate and a sink; returns the
/// peer, the sink and the call's media address.
fn live_call(client: &mut Client, id: &str) -> (Peer, UdpSocket, SocketAddr) {
    let peer = Peer::new(
        "127.0.0.1",
        ProtectionProfile::Aes128CmHmacSha1_80,
        &key(0, 1),
        &key(0, 0),
        16,
    );
    let sink = udp("127.0.0.1");
    let live = start(
        client,
        id,
        0,
        json!([{"ip": "127.0.0.1", "port": peer.addr().port()}]),
        Some(sink.local_addr().unwrap()),
    );
    (peer, sink, addr(&live["local"]))
}

fn status_sum(client: &mut Client, field: &str) -> u64 {
    client.ok("daemon.status", json!({}))["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[field].as_u64().unwrap())
        .sum()
}

/// One flood datagram of kind `n % 5`: garbage, SRTP-looking with a random SSRC, the live
/// stream's SSRC with a bad tag, a STUN Binding request, SRTCP-looking.
fn flood_datagram(n: usize, live_ssrc: u32) -> Vec<u8> {
    let r = |k: usize| (n.wrapping_mul(2654435761).wrapping_add(k * 40503) >> 3) as u32;
    match n % 5 {
        0 => (0..120).map(|k| r(k) as u8).collect(),
        1 => {
            let mut p = rtp_packet(111, r(1) as u16, r(2), r(3), &[0xab; 100]);
            p.extend_from_slice(&[0x11; 10]);
            p
        }
        2 => {
            let mut p = rtp_packet(111, r(1) as u16, r(2), live_ssrc, &[0xcd; 100]);
            p.extend_from_slice(&[0x22; 10]);
            p
        }
        3 => {
            let mut p = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            p.extend((0..12).map(|k| r(k) as u8));
            p
        }
        _ => {
            let mut p = vec![0x81, 200, 0, 6];
            p.extend_from_slice(&r(4).to_be_bytes());
            p.extend_from_slice(&[0x33; 24 + 14]);
            p
        }
    }
}

in_both_layouts! {
    fn a_flood_costs_a_live_call_no_genuine_packet(layout: Layout) {
        let daemon = TestDaemon::start_with(layout, "[calls]\nmax_calls = 400\n");
        let mut client = daemon.client();
        let waiting: Vec<SocketAddr> = (0..WAITING)
            .map(|i| addr(&start(&mut client, &format!("W{i}"), i + 1, json!([]), None)["local"]))
            .collect();
        let (mut peer, sink, media) = live_call(&mut client, "LIVE");
        let flooder = UdpSocket::bind("127.0.0.1:0").unwrap();
        let live_ssrc = 0x0bad_cafe;

        let every = FLOOD / GENUINE;
        let began = Instant::now();
        let mut seq = 0u16;
        for n in 0..FLOOD {
            // The flood goes to the live call's port and to every waiting call's.
            let to = if n % 2 == 0 { media } else { waiting[(n / 2) % WAITING] };
            let _ = flooder.send_to(&flood_datagram(n, live_ssrc), to);
            if n % every == every / 2 {
                peer.send_rtp(&rtp_packet(111, seq, u32::from(seq) * 960, live_ssrc, &[seq as u8; 60]), media);
                seq += 1;
            }
            if n % 150 == 149 {
                // 15,000 a second, as 150 every 10 ms.
                let due = began + Duration::from_millis((n as u64 + 1) / 15);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        assert_eq!(usize::from(seq), GENUINE);
        let got = receive_all(&sink, GENUINE, Duration::from_secs(3));
        let seqs: Vec<u16> = got.iter().map(|(p, _)| u16::from_be_bytes([p[2], p[3]])).collect();
        assert_eq!(seqs, (0..GENUINE as u16).collect::<Vec<_>>(), "every genuine packet, in order");
        let stats = client.ok("call.stats", json!({"call_id": "LIVE"}));
        assert_eq!(stats["audio"]["received"]["packets"], GENUINE, "{stats}");
        assert_eq!(stats["state"], "connected", "{stats}");
        assert_eq!(stats["remote"], json!(peer.addr()), "the flood moved no remote: {stats}");
        for i in (0..WAITING).step_by(37) {
            let w = client.ok("call.stats", json!({"call_id": format!("W{i}")}));
            assert_eq!(w["audio"]["received"]["packets"], 0, "W{i}: {w}");
            assert_eq!(w["remote"], Value::Null, "W{i} latched onto nothing: {w}");
        }
        let limited = status_sum(&mut client, "limited");
        assert!(limited > 0, "the flood's trials were bounded and counted");
        client.ok("daemon.status", json!({}));
    }

    fn forgeries_of_a_live_stream_count_as_auth_and_replays_as_replay(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let (mut peer, sink, media) = live_call(&mut client, "A1");
        let mut plains = Vec::new();
        for seq in 0..50u16 {
            let plain = rtp_packet(111, seq, u32::from(seq) * 960, 0x51, &[1; 40]);
            peer.send_rtp(&plain, media);
            plains.push(plain);
        }
        assert_eq!(receive_all(&sink, 50, Duration::from_secs(3)).len(), 50);
        // Replays: the genuine packets again (the peer's context refuses to protect an index
        // twice, so protect them with a fresh context of the same key).
        let mut twin = Peer::new("127.0.0.1", ProtectionProfile::Aes128CmHmacSha1_80, &key(0, 1), &key(0, 0), 16);
        twin.socket = peer.socket.try_clone().unwrap();
        for plain in &plains {
            twin.send_rtp(plain, media);
        }
        // Forgeries: genuine SSRC and used indexes, tags that do not match.
        for seq in 0..50u16 {
            let mut forged = rtp_packet(111, seq, 0, 0x51, &[2; 40]);
            forged.extend_from_slice(&[0x5a; 10]);
            peer.socket.send_to(&forged, media).unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        let stats = client.ok("call.stats", json!({"call_id": "A1"}));
        let dropped = &stats["audio"]["dropped"];
        assert_eq!(dropped["replay"], 50, "{stats}");
        assert_eq!(dropped["auth"], 50, "{stats}");
        assert_eq!(stats["audio"]["received"]["packets"], 50, "{stats}");
        assert!(receive_all(&sink, 1, Duration::from_millis(300)).is_empty());
    }

    fn stun_is_answered_to_candidates_only_and_within_budget(layout: Layout) {
        // 520 bytes a second: ten answers.
        let daemon = TestDaemon::start_with(
            layout,
            "[calls]\nstun_reply_bytes_per_s = 520\ncandidate_check_timeout_ms = 1\n",
        );
        let mut client = daemon.client();
        let candidate = udp("127.0.0.1");
        let stranger = udp("127.0.0.1");
        let live = start(
            &mut client,
            "S1",
            0,
            json!([{"ip": "127.0.0.1", "port": candidate.local_addr().unwrap().port()}]),
            None,
        );
        let media = addr(&live["local"]);
        let request = |i: u8| {
            let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            m.extend_from_slice(&[i; 12]);
            m
        };
        for i in 0..100 {
            stranger.send_to(&request(i), media).unwrap();
        }
        let answers = |socket: &UdpSocket| {
            receive_all(socket, 1000, Duration::from_millis(500))
                .into_iter()
                .filter(|(d, _)| d.starts_with(&[0x01, 0x01]))
                .count()
        };
        assert_eq!(answers(&stranger), 0, "a stranger's requests go unanswered");
        for i in 0..100 {
            candidate.send_to(&request(i), media).unwrap();
        }
        let answered = answers(&candidate);
        assert!((1..=12).contains(&answered), "{answered} answers to 100 requests");
        assert!(status_sum(&mut client, "limited") >= 88);
    }

    fn a_call_waiting_for_its_peer_answers_strangers_within_their_budget(layout: Layout) {
        // 5 trials a second per source, a burst of 10.
        let daemon = TestDaemon::start_with(layout, "[calls]\ntrials_per_source_per_s = 5\n");
        let mut client = daemon.client();
        let waiting = start(&mut client, "W1", 0, json!([]), None);
        let media = addr(&waiting["local"]);
        let stranger = udp("127.0.0.1");
        for i in 0..100u8 {
            let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            m.extend_from_slice(&[i; 12]);
            stranger.send_to(&m, media).unwrap();
        }
        let answers = receive_all(&stranger, 1000, Duration::from_millis(500))
            .into_iter()
            .filter(|(d, from)| d.starts_with(&[0x01, 0x01]) && *from == media)
            .count();
        assert!((10..=12).contains(&answers), "{answers} answers to 100 requests");
        assert!(status_sum(&mut client, "limited") >= 88);
        let stats = client.ok("call.stats", json!({"call_id": "W1"}));
        assert_eq!(stats["state"], "waiting", "answering latches nothing: {stats}");
    }

    fn producers_only_from_the_configured_networks(layout: Layout) {
        let daemon = TestDaemon::start_with(layout, "producer_allow = [\"127.0.0.2/32\"]\n");
        let mut client = daemon.client();
        let mut peer = Peer::new("127.0.0.1", ProtectionProfile::Aes128CmHmacSha1_80, &key(0, 1), &key(0, 0), 16);
        let started = client.ok(
            "call.start",
            json!({
                "call_id": "P1", "mute_mode": "drop",
                "candidates": [{"ip": "127.0.0.1", "port": peer.addr().port()}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                           "tx": B64.encode(key(0, 0)), "rx": B64.encode(key(0, 1))},
                "audio": {"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp"}},
            }),
        );
        let source = addr(&started["audio"]["source"]);
        let before = status_sum(&mut client, "unclaimed");
        let elsewhere = udp("127.0.0.1");
        for seq in 0..10u16 {
            elsewhere.send_to(&rtp_packet(111, seq, 0, 9, &[1; 20]), source).unwrap();
        }
        peer.pump(Duration::from_millis(500), 1);
        assert!(peer.seen.rtp.is_empty(), "nothing from 127.0.0.1 was sent on");
        assert!(status_sum(&mut client, "unclaimed") >= before + 10);
        let producer = udp("127.0.0.2");
        for seq in 10..20u16 {
            producer.send_to(&rtp_packet(111, seq, 0, 9, &[1; 20]), source).unwrap();
        }
        peer.pump(Duration::from_secs(2), 10);
        assert_eq!(peer.seen.rtp.len(), 10, "the configured producer's packets went out");
    }
}
