//! Single-port mode through the real binary: calls share one media port and one local port
//! per worker,
//! packets find their call by remote address and SSRC (peers) or SSRC (producers), batches go
//! out in fewer system calls than packets, and garbage is dropped and counted without touching
//! any call. The peer side is webrtc-srtp, one socket carrying the streams of every call.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use base64::Engine;
use common::daemon::{Client, TestDaemon, addr, free_port, free_ports, receive_all, udp};
use common::rtp_packet;
use serde_json::{Value, json};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CALLS: usize = 3;

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

fn start(client: &mut Client, i: usize, peer: SocketAddr, sink: SocketAddr) -> Value {
    client.ok(
        "call.start",
        json!({
            "call_id": format!("SP-{i}"), "mute_mode": "drop",
            "candidates": [{"ip": "127.0.0.1", "port": peer.port()}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(i, 0)), "rx": B64.encode(key(i, 1))},
            "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": 0x5000 + i,
                      "source": {"kind": "rtp", "ssrc": 0x1000 + i},
                      "sink": {"kind": "rtp", "forward": sink}},
        }),
    )
}

/// Sends packets `seqs` of every call's stream (SSRC 0xa0 + i, payload all i) from `peer`.
fn send_streams(peer: &UdpSocket, txs: &mut [Context], seqs: std::ops::Range<u16>, to: SocketAddr) {
    for seq in seqs {
        for (i, tx) in txs.iter_mut().enumerate() {
            let plain = rtp_packet(
                111,
                seq,
                u32::from(seq) * 960,
                0xa0 + i as u32,
                &[i as u8; 40],
            );
            peer.send_to(&tx.encrypt_rtp(&plain).unwrap(), to).unwrap();
        }
    }
}

/// The one worker's counters.
fn shared_stats(client: &mut Client) -> Value {
    let status = client.ok("daemon.status", json!({}));
    assert_eq!(
        status["shared_ports"].as_array().unwrap().len(),
        1,
        "{status}"
    );
    status["shared_ports"][0].clone()
}

/// The one worker's counters once `settled` holds of them, or as they are after two seconds:
/// a worker adds to its counters when a system call returns, so a test can see the packets
/// of a batch before the counters that record them.
fn shared_stats_when(client: &mut Client, settled: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let stats = shared_stats(client);
        if settled(&stats) || std::time::Instant::now() >= deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon in single-port mode with `workers` workers from `port` on.
fn single_port_daemon(port: u16, workers: usize) -> TestDaemon {
    TestDaemon::start_with(&format!(
        "single_port = {port}\nsingle_port_workers = {workers}\n"
    ))
}

#[test]
fn calls_share_one_port_and_each_packet_finds_its_call() {
    let port = free_port("127.0.0.1");
    let daemon = single_port_daemon(port, 1);
    let mut client = daemon.client();
    let peer = udp("127.0.0.1");
    let sinks: Vec<UdpSocket> = (0..CALLS).map(|_| udp("127.0.0.1")).collect();
    let started: Vec<Value> = (0..CALLS)
        .map(|i| {
            start(
                &mut client,
                i,
                peer.local_addr().unwrap(),
                sinks[i].local_addr().unwrap(),
            )
        })
        .collect();
    let media = addr(&started[0]["local"]);
    let source = addr(&started[0]["audio"]["source"]);
    assert_eq!(media, SocketAddr::from(([127, 0, 0, 1], port)));
    for s in &started {
        assert_eq!(addr(&s["local"]), media, "every call is on the one port");
        assert_eq!(addr(&s["audio"]["source"]), source, "and one local port");
    }

    // Peer → daemon: each call's stream, from one address, lands at that call's sink only.
    let mut peer_tx: Vec<Context> = (0..CALLS).map(|i| context(&key(i, 1))).collect();
    send_streams(&peer, &mut peer_tx, 0..40, media);
    for (i, sink) in sinks.iter().enumerate() {
        let got = receive_all(sink, 40, Duration::from_millis(1500));
        assert_eq!(got.len(), 40, "call {i}'s sink");
        for (packet, from) in &got {
            assert_eq!(*from, source, "sinks are fed from the local port");
            assert_eq!(
                &packet[12..],
                &[i as u8; 40],
                "call {i} got another call's packet"
            );
            assert_eq!(&packet[8..12], &(0xa0 + i as u32).to_be_bytes());
        }
    }

    // Producer → daemon → peer: told apart by the producer's SSRC, sent as the call's SSRC.
    let producer = udp("127.0.0.1");
    let before = shared_stats(&mut client);
    let mut burst = Vec::new();
    for seq in 0..30u16 {
        for i in 0..CALLS {
            burst.push(rtp_packet(
                111,
                seq,
                u32::from(seq) * 960,
                0x1000 + i as u32,
                &[0x10 + i as u8; 60],
            ));
        }
    }
    // One GSO message per call's run of packets, so the daemon sees whole batches.
    let mut queue = srtpd::net::SendQueue::new(burst.len(), srtpd::net::supports_gso(&producer));
    let flat: Vec<u8> = burst.concat();
    let size = burst[0].len();
    for k in 0..burst.len() {
        assert!(queue.push(source, k * size, size, 0));
    }
    queue.flush(&producer, &flat).unwrap();
    let mut peer_rx: Vec<Context> = (0..CALLS).map(|i| context(&key(i, 0))).collect();
    let mut per_call = [0usize; CALLS];
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut wire = [0u8; 2048];
    peer.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while per_call.iter().sum::<usize>() < CALLS * 30 && std::time::Instant::now() < deadline {
        let Ok((n, from)) = peer.recv_from(&mut wire) else {
            continue;
        };
        let wire = &wire[..n];
        if wire[0] >> 6 != 2 || (192..=223).contains(&wire[1]) {
            continue; // STUN checks and keepalives, RTCP
        }
        assert_eq!(from, media);
        let ssrc = u32::from_be_bytes([wire[8], wire[9], wire[10], wire[11]]);
        let i = (ssrc - 0x5000) as usize;
        let plain = peer_rx[i]
            .decrypt_rtp(wire)
            .expect("decrypts with its own call's key");
        assert_eq!(&plain[12..], &[0x10 + i as u8; 60]);
        per_call[i] += 1;
    }
    assert_eq!(per_call, [30; CALLS]);
    let out_before = before["datagrams_out"].as_u64().unwrap();
    let after = shared_stats_when(&mut client, |s| {
        s["datagrams_out"].as_u64().unwrap() - out_before >= (CALLS * 30) as u64
    });
    let sends = after["sends"].as_u64().unwrap() - before["sends"].as_u64().unwrap();
    let out = after["datagrams_out"].as_u64().unwrap() - out_before;
    assert!(out >= (CALLS * 30) as u64, "{after}");
    if after["gso"] == true && queue.gso() {
        assert!(
            sends * 4 <= out,
            "batched: {sends} sendmmsg calls for {out} datagrams"
        );
    }

    // Garbage at the shared port: dropped, counted, and no call's counters move.
    let stats_before: Vec<Value> = (0..CALLS)
        .map(|i| client.ok("call.stats", json!({"call_id": format!("SP-{i}")})))
        .collect();
    let unclaimed_before = shared_stats(&mut client)["unclaimed"].as_u64().unwrap();
    let mut stranger = context(&key(9, 9));
    for n in 0..20u16 {
        peer.send_to(&[0xde, 0xad, 0xbe, 0xef, n as u8], media)
            .unwrap();
        let forged = rtp_packet(111, n, 0, 0xbad0, &[1; 20]);
        peer.send_to(&stranger.encrypt_rtp(&forged).unwrap(), media)
            .unwrap();
    }
    // Time for any datagram counted twice to show, then for a slow worker to catch up.
    std::thread::sleep(Duration::from_millis(300));
    let unclaimed = shared_stats_when(&mut client, |s| {
        s["unclaimed"].as_u64().unwrap() - unclaimed_before >= 40
    })["unclaimed"]
        .as_u64()
        .unwrap();
    assert_eq!(unclaimed - unclaimed_before, 40);
    // Forgeries of call 0's stream (its address and SSRC) are that call's auth drops.
    for n in 0..5u16 {
        let forged = rtp_packet(111, 1000 + n, 0, 0xa0, &[1; 20]);
        peer.send_to(&stranger.encrypt_rtp(&forged).unwrap(), media)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    for (i, b) in stats_before.iter().enumerate() {
        let now = client.ok("call.stats", json!({"call_id": format!("SP-{i}")}));
        assert_eq!(now["audio"]["received"], b["audio"]["received"], "call {i}");
        let auth = b["audio"]["dropped"]["auth"].as_u64().unwrap() + if i == 0 { 5 } else { 0 };
        assert_eq!(now["audio"]["dropped"]["auth"], auth, "call {i}");
        assert_eq!(
            now["audio"]["dropped"]["other"], b["audio"]["dropped"]["other"],
            "call {i}"
        );
    }

    // Terminating one call frees its SSRCs; the others carry on.
    client.ok("call.terminate", json!({"call_id": "SP-0"}));
    send_streams(&peer, &mut peer_tx, 40..50, media);
    assert_eq!(
        receive_all(&sinks[1], 10, Duration::from_millis(1500)).len(),
        10
    );
    assert_eq!(
        receive_all(&sinks[2], 10, Duration::from_millis(1500)).len(),
        10
    );
    assert_eq!(
        receive_all(&sinks[0], 1, Duration::from_millis(300)).len(),
        0
    );
}

#[test]
fn calls_that_do_not_fit_one_port_are_refused_clearly() {
    let port = free_port("127.0.0.1");
    let daemon = single_port_daemon(port, 1);
    let mut client = daemon.client();
    let base = |audio: Value, extra: Value| {
        let mut p = json!({
            "call_id": "BAD", "candidates": [{"ip": "127.0.0.1", "port": 9}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(0, 0)), "rx": B64.encode(key(0, 1))},
            "audio": audio,
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let rtp = json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp"}});
    let cases = [
        (base(rtp.clone(), json!({})), "audio.source.ssrc"),
        (
            base(
                json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp", "ssrc": 1, "listen": "127.0.0.1:0"}}),
                json!({}),
            ),
            "audio.source.ssrc",
        ),
        (
            base(
                json!({"payload_type": 111, "clock_rate": 48000}),
                json!({"candidates": [{"ip": "::1", "port": 9}]}),
            ),
            "candidates[0].ip",
        ),
        (
            base(
                json!({"payload_type": 111, "clock_rate": 48000}),
                json!({"bind": "127.0.0.2"}),
            ),
            "bind",
        ),
        (
            base(
                json!({"payload_type": 111, "clock_rate": 48000}),
                json!({"bind": format!("127.0.0.1:{}", port + 1)}),
            ),
            "bind",
        ),
        (
            base(
                json!({"payload_type": 111, "clock_rate": 48000, "sink": {"kind": "rtp", "forward": "[::1]:5000"}}),
                json!({}),
            ),
            "audio.sink.forward",
        ),
    ];
    for (params, field) in cases {
        let (code, message) = client.call("call.start", params).unwrap_err();
        assert_eq!(code, -32602, "{message}");
        assert!(message.contains(field), "{message:?} names {field}");
    }
    assert_eq!(client.ok("call.list", json!({})), json!([]));
    let ok = client.ok(
        "call.start",
        base(
            json!({"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp", "ssrc": 7}}),
            json!({}),
        ),
    );
    assert_eq!(addr(&ok["local"]).port(), port);
}

#[test]
fn workers_share_the_calls_and_each_carries_its_own() {
    let port = free_ports("127.0.0.1", 2);
    let daemon = single_port_daemon(port, 2);
    let mut client = daemon.client();
    let peer = udp("127.0.0.1");
    let sinks: Vec<UdpSocket> = (0..4).map(|_| udp("127.0.0.1")).collect();
    let started: Vec<Value> = (0..4)
        .map(|i| {
            start(
                &mut client,
                i,
                peer.local_addr().unwrap(),
                sinks[i].local_addr().unwrap(),
            )
        })
        .collect();
    let ports: Vec<u16> = started.iter().map(|s| addr(&s["local"]).port()).collect();
    let mut sorted = ports.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [port, port, port + 1, port + 1],
        "new calls go to the worker with fewer calls"
    );
    let status = client.ok("daemon.status", json!({}));
    let workers = status["shared_ports"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{status}");
    for w in workers {
        assert_eq!(w["calls"], 2, "{status}");
    }
    assert_ne!(
        workers[0]["local"], workers[1]["local"],
        "each worker has a local port of its own"
    );

    // Each call's stream, sent to its own worker's port, reaches its own sink only.
    let mut peer_tx: Vec<Context> = (0..4).map(|i| context(&key(i, 1))).collect();
    for seq in 0..20u16 {
        for (i, tx) in peer_tx.iter_mut().enumerate() {
            let plain = rtp_packet(
                111,
                seq,
                u32::from(seq) * 960,
                0xa0 + i as u32,
                &[i as u8; 40],
            );
            let to = SocketAddr::from(([127, 0, 0, 1], ports[i]));
            peer.send_to(&tx.encrypt_rtp(&plain).unwrap(), to).unwrap();
        }
    }
    for (i, sink) in sinks.iter().enumerate() {
        let got = receive_all(sink, 20, Duration::from_millis(1500));
        assert_eq!(got.len(), 20, "call {i}'s sink");
        for (packet, from) in &got {
            assert_eq!(&packet[12..], &[i as u8; 40], "call {i}");
            assert_eq!(
                addr(&started[i]["audio"]["source"]),
                *from,
                "fed by its worker"
            );
        }
    }
    // A stream sent to the other worker's port finds no call there.
    let other = if ports[0] == port { port + 1 } else { port };
    let before: u64 = (0..2)
        .map(|w| {
            client.ok("daemon.status", json!({}))["shared_ports"][w]["unclaimed"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let plain = rtp_packet(111, 20, 20 * 960, 0xa0, &[0; 40]);
    peer.send_to(
        &peer_tx[0].encrypt_rtp(&plain).unwrap(),
        SocketAddr::from(([127, 0, 0, 1], other)),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = client.ok("daemon.status", json!({}));
    let after: u64 = (0..2)
        .map(|w| status["shared_ports"][w]["unclaimed"].as_u64().unwrap())
        .sum();
    assert_eq!(after - before, 1, "{status}");
    assert_eq!(
        receive_all(&sinks[0], 1, Duration::from_millis(300)).len(),
        0
    );

    // `bind` picks the worker; ending calls frees their worker's room.
    let pinned = client.ok(
        "call.start",
        json!({
            "call_id": "PIN", "bind": format!("127.0.0.1:{}", port + 1),
            "candidates": [{"ip": "127.0.0.1", "port": 9}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(7, 0)), "rx": B64.encode(key(7, 1))},
            "audio": {"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp", "ssrc": 0x7777}},
        }),
    );
    assert_eq!(addr(&pinned["local"]).port(), port + 1);
    for i in 0..4 {
        client.ok("call.terminate", json!({"call_id": format!("SP-{i}")}));
    }
    client.ok("call.terminate", json!({"call_id": "PIN"}));
    let status = client.ok("daemon.status", json!({}));
    for w in status["shared_ports"].as_array().unwrap() {
        assert_eq!(w["calls"], 0, "{status}");
    }
}
