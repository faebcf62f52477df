//! The engine through the real binary in both socket layouts: calls spread over the workers,
//! each datagram finds its call (by socket, or on a shared port by remote address and SSRC),
//! producers on ports of their own or on a worker's shared producer port (by SSRC), garbage
//! dropped and counted without touching any call, IPv6, and what does not fit refused
//! clearly. The peer side is webrtc-srtp, one socket carrying the streams of every call, as a
//! relay's would.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use base64::Engine;
use common::daemon::{Client, Layout, TestDaemon, WORKERS, addr, receive_all, udp};
use common::rtp_packet;
use serde_json::{Value, json};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CALLS: usize = 4;

/// Key‖salt of call `i`, direction `d` (0: daemon → peer, 1: peer → daemon).
fn key(i: usize, d: u8) -> Vec<u8> {
    (0..30u8)
        .map(|j| j.wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ d.wrapping_mul(0x55))
        .collect()
}

fn context(k: &[u8]) -> Context {
    Context::new(
        &k[..16],
        &k[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        Some(webrtc_srtp::option::srtp_replay_protection(1024)),
        None,
    )
    .unwrap()
}

/// Starts call `i` with `peer` as its only candidate, its producer on a port of its own (or
/// by SSRC on the shared producer port), its sink `sink`.
fn start(
    client: &mut Client,
    i: usize,
    peer: SocketAddr,
    source: Value,
    sink: SocketAddr,
) -> Value {
    client.ok(
        "call.start",
        json!({
            "call_id": format!("L-{i}"), "mute_mode": "drop",
            "candidates": [{"ip": peer.ip(), "port": peer.port()}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(i, 0)), "rx": B64.encode(key(i, 1))},
            "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": 0x5000 + i,
                      "source": source, "sink": {"kind": "rtp", "forward": sink}},
        }),
    )
}

/// Sends packets `seqs` of every call's stream (SSRC 0xa0 + i, payload all i) from `peer` to
/// each call's media address.
fn send_streams(
    peer: &UdpSocket,
    txs: &mut [Context],
    seqs: std::ops::Range<u16>,
    to: &[SocketAddr],
) {
    for seq in seqs {
        for (i, tx) in txs.iter_mut().enumerate() {
            let plain = rtp_packet(
                111,
                seq,
                u32::from(seq) * 960,
                0xa0 + i as u32,
                &[i as u8; 40],
            );
            peer.send_to(&tx.encrypt_rtp(&plain).unwrap(), to[i])
                .unwrap();
        }
    }
}

fn workers(client: &mut Client) -> Vec<Value> {
    client.ok("daemon.status", json!({}))["workers"]
        .as_array()
        .unwrap()
        .clone()
}

fn unclaimed(client: &mut Client) -> u64 {
    workers(client)
        .iter()
        .map(|w| w["unclaimed"].as_u64().unwrap())
        .sum()
}

/// The workers' unclaimed count once it reached `at_least`, or after two seconds: a worker
/// publishes its counters after each batch, so a test can see packets before their count.
fn unclaimed_when(client: &mut Client, at_least: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let n = unclaimed(client);
        if n >= at_least || std::time::Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Receives from `peer` until every call's `count` packets arrived; checks each decrypts
/// with its own call's key, carries the payload its producer sent, and comes from its call's
/// media address.
fn expect_at_peer(
    peer: &UdpSocket,
    media: &[SocketAddr],
    count: usize,
    payload: impl Fn(usize) -> Vec<u8>,
) {
    let mut rx: Vec<Context> = (0..media.len()).map(|i| context(&key(i, 0))).collect();
    let mut per_call = vec![0usize; media.len()];
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut wire = [0u8; 2048];
    peer.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while per_call.iter().sum::<usize>() < media.len() * count
        && std::time::Instant::now() < deadline
    {
        let Ok((n, from)) = peer.recv_from(&mut wire) else {
            continue;
        };
        let wire = &wire[..n];
        if wire[0] >> 6 != 2 || (192..=223).contains(&wire[1]) {
            continue; // STUN checks and keepalives, RTCP
        }
        let ssrc = u32::from_be_bytes([wire[8], wire[9], wire[10], wire[11]]);
        let i = (ssrc - 0x5000) as usize;
        assert_eq!(from, media[i], "call {i} sends from its media address");
        let plain = rx[i]
            .decrypt_rtp(wire)
            .expect("decrypts with its own call's key");
        assert_eq!(&plain[12..], &payload(i)[..], "call {i}");
        per_call[i] += 1;
    }
    assert_eq!(per_call, vec![count; media.len()]);
}

in_both_layouts! {
fn calls_behind_one_peer_each_get_their_own_packets(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let peer = udp("127.0.0.1");
    let sinks: Vec<UdpSocket> = (0..CALLS).map(|_| udp("127.0.0.1")).collect();
    // Calls 0 and 1 have producers on ports of their own, 2 and 3 on the shared one.
    let started: Vec<Value> = (0..CALLS)
        .map(|i| {
            let source = if i < 2 {
                json!({"kind": "rtp"})
            } else {
                json!({"kind": "rtp", "ssrc": 0x1000 + i})
            };
            start(&mut client, i, peer.local_addr().unwrap(), source, sinks[i].local_addr().unwrap())
        })
        .collect();
    let media: Vec<SocketAddr> = started.iter().map(|s| addr(&s["local"])).collect();
    let sources: Vec<SocketAddr> = started.iter().map(|s| addr(&s["audio"]["source"])).collect();
    let status = workers(&mut client);
    assert_eq!(status.len(), usize::from(WORKERS));
    for w in &status {
        assert_eq!(w["calls"], CALLS / usize::from(WORKERS), "calls spread over the workers: {status:?}");
    }
    let shared_locals: Vec<SocketAddr> = status.iter().map(|w| addr(&w["local"])).collect();
    assert_ne!(sources[0], sources[1], "own producer ports");
    for (i, source) in sources.iter().enumerate().skip(2) {
        assert!(shared_locals.contains(source), "call {i} uses its worker's shared producer port");
    }
    match layout {
        Layout::PerCall => {
            let mut distinct = media.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), CALLS, "a media port per call");
        }
        Layout::Shared => {
            for (i, m) in media.iter().enumerate() {
                let port = m.port();
                assert!(
                    (daemon.shared_port..daemon.shared_port + WORKERS).contains(&port),
                    "call {i} on a shared port: {m}"
                );
                assert!(status.iter().any(|w| w["media"].as_array().unwrap().contains(&json!(m))));
            }
        }
    }

    // Peer → daemon: each call's stream, from one address, lands at that call's sink only, fed
    // from the call's producer port (or its worker's shared one).
    let mut peer_tx: Vec<Context> = (0..CALLS).map(|i| context(&key(i, 1))).collect();
    send_streams(&peer, &mut peer_tx, 0..40, &media);
    for (i, sink) in sinks.iter().enumerate() {
        let got = receive_all(sink, 40, Duration::from_millis(1500));
        assert_eq!(got.len(), 40, "call {i}'s sink");
        for (packet, from) in &got {
            assert_eq!(*from, sources[i], "call {i}'s sink is fed from its local port");
            assert_eq!(&packet[12..], &[i as u8; 40], "call {i} got another call's packet");
            assert_eq!(&packet[8..12], &(0xa0 + i as u32).to_be_bytes());
        }
    }

    // Producers → daemon → peer: found by port or by SSRC, sent as the call's SSRC.
    let producer = udp("127.0.0.1");
    let out_before: u64 = workers(&mut client).iter().map(|w| w["datagrams_out"].as_u64().unwrap()).sum();
    for seq in 0..30u16 {
        for (i, source) in sources.iter().enumerate() {
            let p = rtp_packet(96, seq, u32::from(seq) * 960, 0x1000 + i as u32, &[0x10 + i as u8; 60]);
            producer.send_to(&p, source).unwrap();
        }
    }
    expect_at_peer(&peer, &media, 30, |i| vec![0x10 + i as u8; 60]);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let out = loop {
        let out: u64 = workers(&mut client).iter().map(|w| w["datagrams_out"].as_u64().unwrap()).sum();
        if out - out_before >= (CALLS * 30) as u64 || std::time::Instant::now() >= deadline {
            break out - out_before;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(out >= (CALLS * 30) as u64, "the workers count what they sent: {out}");

    // Garbage: dropped, counted once, and no call's counters move.
    let stats_before: Vec<Value> = (0..CALLS)
        .map(|i| client.ok("call.stats", json!({"call_id": format!("L-{i}")})))
        .collect();
    let unclaimed_before = unclaimed(&mut client);
    let stranger = udp("127.0.0.1");
    let mut stranger_tx = context(&key(9, 9));
    for n in 0..20u16 {
        // Not RTP at all, to every call's media port and producer port.
        for to in media.iter().chain(&sources) {
            stranger.send_to(&[0xde, 0xad, 0xbe, 0xef, n as u8], to).unwrap();
        }
        // A stream no call knows, from an address no call knows.
        let forged = rtp_packet(111, n, 0, 0xbad0, &[1; 20]);
        stranger.send_to(&stranger_tx.encrypt_rtp(&forged).unwrap(), media[0]).unwrap();
    }
    let expected = unclaimed_before + 20 * (2 * CALLS as u64 + 1);
    // Time for any datagram counted twice to show, then for a slow worker to catch up.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(unclaimed_when(&mut client, expected), expected);
    // Forgeries of call 0's stream (its address and SSRC) are that call's auth drops.
    for n in 0..5u16 {
        let forged = rtp_packet(111, 1000 + n, 0, 0xa0, &[1; 20]);
        peer.send_to(&stranger_tx.encrypt_rtp(&forged).unwrap(), media[0]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    for (i, b) in stats_before.iter().enumerate() {
        let now = client.ok("call.stats", json!({"call_id": format!("L-{i}")}));
        assert_eq!(now["audio"]["received"], b["audio"]["received"], "call {i}");
        let auth = b["audio"]["dropped"]["auth"].as_u64().unwrap() + if i == 0 { 5 } else { 0 };
        assert_eq!(now["audio"]["dropped"]["auth"], auth, "call {i}");
        assert_eq!(now["audio"]["dropped"]["other"], b["audio"]["dropped"]["other"], "call {i}");
        assert_eq!(now["remote"], json!(peer.local_addr().unwrap()), "call {i}");
    }
    assert_eq!(unclaimed(&mut client), expected);

    // Terminating one call frees its streams; the others carry on.
    client.ok("call.terminate", json!({"call_id": "L-0"}));
    send_streams(&peer, &mut peer_tx, 40..50, &media);
    for (i, sink) in sinks.iter().enumerate().skip(1) {
        assert_eq!(receive_all(sink, 10, Duration::from_millis(1500)).len(), 10, "call {i}");
    }
    assert_eq!(receive_all(&sinks[0], 1, Duration::from_millis(300)).len(), 0);
    // In the per-call layout the ended call's port is closed, and the kernel drops its
    // stream. On a shared port the stream is now one no call has seen: from the address of
    // the other calls on that worker, it is their auth failure if one call alone knows the
    // address, unclaimed if several do. Either way it is counted once, and nowhere received.
    std::thread::sleep(Duration::from_millis(300));
    let auth: u64 = (1..CALLS)
        .map(|i| {
            let s = client.ok("call.stats", json!({"call_id": format!("L-{i}")}));
            s["audio"]["dropped"]["auth"].as_u64().unwrap()
        })
        .sum();
    let counted = unclaimed(&mut client) - expected + auth;
    let auth_before: u64 = stats_before[1..]
        .iter()
        .map(|b| b["audio"]["dropped"]["auth"].as_u64().unwrap())
        .sum();
    let counted = counted - auth_before;
    match layout {
        Layout::PerCall => assert_eq!(counted, 0),
        Layout::Shared => assert_eq!(counted, 10),
    }
    let status = workers(&mut client);
    assert_eq!(status.iter().map(|w| w["calls"].as_u64().unwrap()).sum::<u64>(), CALLS as u64 - 1);
}

fn ipv6_calls_carry_media_both_ways(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let peer = udp("::1");
    let sink = udp("::1");
    let r = client.ok(
        "call.start",
        json!({
            "call_id": "V6", "mute_mode": "drop",
            "candidates": [{"ip": "::1", "port": peer.local_addr().unwrap().port()}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(0, 0)), "rx": B64.encode(key(0, 1))},
            "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": 0x5000,
                      "source": {"kind": "rtp"}, "sink": {"kind": "rtp", "forward": sink.local_addr().unwrap()}},
        }),
    );
    let media = addr(&r["local"]);
    let source = addr(&r["audio"]["source"]);
    assert!(media.is_ipv6() && media.ip().is_loopback(), "{media}");
    assert!(source.is_ipv6(), "a producer port that can feed an IPv6 sink: {source}");
    if layout == Layout::Shared {
        assert!((daemon.shared_port..daemon.shared_port + WORKERS).contains(&media.port()));
    }
    let mut tx = context(&key(0, 1));
    send_streams(&peer, std::slice::from_mut(&mut tx), 0..25, &[media]);
    let got = receive_all(&sink, 25, Duration::from_millis(1500));
    assert_eq!(got.len(), 25);
    assert!(got.iter().all(|(p, from)| p[12..] == [0u8; 40] && *from == source));
    let producer = udp("::1");
    for seq in 0..25u16 {
        producer.send_to(&rtp_packet(96, seq, 0, 1, &[0x33; 50]), source).unwrap();
    }
    expect_at_peer(&peer, &[media], 25, |_| vec![0x33; 50]);
    let stats = client.ok("call.stats", json!({"call_id": "V6"}));
    assert_eq!(stats["state"], "connected");
    assert_eq!(stats["remote"], json!(peer.local_addr().unwrap()));
}

fn what_does_not_fit_is_refused_clearly_and_bind_picks_the_port(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    let base = |id: &str, audio: Value, extra: Value| {
        let mut p = json!({
            "call_id": id, "candidates": [{"ip": "127.0.0.1", "port": 9}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(0, 0)), "rx": B64.encode(key(0, 1))},
            "audio": audio,
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let plain = json!({"payload_type": 111, "clock_rate": 48000});
    let mut cases = vec![
        (
            base("BAD", json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp", "ssrc": 1, "listen": "127.0.0.1:0"}}), json!({})),
            "audio.source",
        ),
        (
            base("BAD", plain.clone(), json!({"candidates": [{"ip": "127.0.0.1", "port": 9}, {"ip": "::1", "port": 9}]})),
            "candidates[1].ip",
        ),
        (base("BAD", plain.clone(), json!({"bind": "::1"})), "candidates[0].ip"),
    ];
    if layout == Layout::Shared {
        // A shared-layout call runs on a worker's port: another address or port is refused.
        cases.push((base("BAD", plain.clone(), json!({"bind": "127.0.0.2"})), "bind"));
        cases.push((
            base("BAD", plain.clone(), json!({"bind": format!("127.0.0.1:{}", daemon.shared_port + WORKERS)})),
            "bind",
        ));
    }
    for (params, field) in cases {
        let (code, message) = client.call("call.start", params).unwrap_err();
        assert_eq!(code, -32602, "{message}");
        assert!(message.contains(field), "{message:?} names {field}");
    }
    assert_eq!(client.ok("call.list", json!({})), json!([]));
    assert_eq!(client.ok("daemon.status", json!({}))["calls"], 0);

    // `bind` with a port: that port (per-call), or that worker's (shared).
    let port = daemon.bind_port();
    let pinned = client.ok("call.start", base("PIN", plain.clone(), json!({"bind": format!("127.0.0.1:{port}")})));
    assert_eq!(addr(&pinned["local"]).port(), port);
    if layout == Layout::Shared {
        let second = daemon.shared_port + 1;
        let other = client.ok("call.start", base("PIN2", plain.clone(), json!({"bind": format!("127.0.0.1:{second}")})));
        assert_eq!(addr(&other["local"]).port(), second);
    }

    // One SSRC per shared producer port: two calls on one worker cannot both claim it.
    let with_ssrc = json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp", "ssrc": 77}});
    let mut taken = None;
    for n in 0..=WORKERS {
        match client.call("call.start", base(&format!("SSRC-{n}"), with_ssrc.clone(), json!({}))) {
            Ok(r) => assert!(r["audio"]["source"].is_string()),
            Err(e) => {
                taken = Some(e);
                break;
            }
        }
    }
    let (code, message) = taken.expect("a worker refuses an SSRC its producer port already has");
    assert_eq!(code, -32602);
    assert!(message.contains("audio.source.ssrc") && message.contains("77"), "{message}");
}
}
