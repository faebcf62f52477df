//! Calls through the real srtpd binary over loopback UDP, driven through its control socket.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use base64::Engine;
use common::daemon::{Layout, TestDaemon, addr, receive_all, udp};
use common::rtp_packet;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn key_b64(seed: u8, len: usize) -> String {
    B64.encode(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(7) ^ seed)
            .collect::<Vec<u8>>(),
    )
}

fn audio(source: bool, sink: Option<SocketAddr>) -> Value {
    json!({
        "payload_type": 111, "clock_rate": 48000, "ptime_ms": 20,
        "source": if source { json!({"kind": "rtp"}) } else { json!({"kind": "none"}) },
        "sink": match sink { Some(a) => json!({"kind": "rtp", "forward": a}), None => json!({"kind": "none"}) },
    })
}

/// Plain RTP packets with distinct payloads, as a local producer would send them.
fn producer_packets(count: usize, ssrc: u32, tag: u8) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let payload: Vec<u8> = (0..(40 + i % 120))
                .map(|j| (i as u8) ^ (j as u8) ^ tag)
                .collect();
            rtp_packet(96, 1000 + i as u16, (i * 960) as u32, ssrc, &payload)
        })
        .collect()
}

/// Feeds `packets` into `source` in small bursts.
fn feed(from: &UdpSocket, source: SocketAddr, packets: &[Vec<u8>]) {
    for chunk in packets.chunks(25) {
        for p in chunk {
            from.send_to(p, source).unwrap();
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

fn payloads(datagrams: &[(Vec<u8>, SocketAddr)]) -> Vec<Vec<u8>> {
    datagrams.iter().map(|(d, _)| d[12..].to_vec()).collect()
}

/// Two daemons in a call with each other; returns (daemon, client, source, sink socket) per side.
fn two_party_call(layout: Layout, keying_a: Value, keying_b: Value, ids: (&str, &str)) {
    two_party_call_with(layout, "", keying_a, keying_b, ids);
}

/// The same between daemons with `config` added.
fn two_party_call_with(
    layout: Layout,
    config: &str,
    keying_a: Value,
    keying_b: Value,
    ids: (&str, &str),
) {
    let (a, b) = (
        TestDaemon::start_with(layout, config),
        TestDaemon::start_with(layout, config),
    );
    let (mut ca, mut cb) = (a.client(), b.client());
    let (port_a, port_b) = (a.bind_port(), b.bind_port());
    let (sink_a, sink_b) = (udp("127.0.0.1"), udp("127.0.0.1"));
    let start = |client: &mut common::daemon::Client,
                 keying: &Value,
                 own: u16,
                 other: u16,
                 sink: &UdpSocket,
                 self_id: &str,
                 peer: &str| {
        client.ok(
            "call.start",
            json!({
                "call_id": "CALLID-0001", "self": self_id, "peer": peer,
                "bind": format!("127.0.0.1:{own}"),
                "candidates": [{"ip": "127.0.0.1", "port": other, "priority": 1}],
                "keying": keying,
                "audio": audio(true, Some(sink.local_addr().unwrap())),
            }),
        )
    };
    let ra = start(&mut ca, &keying_a, port_a, port_b, &sink_a, ids.0, ids.1);
    let rb = start(&mut cb, &keying_b, port_b, port_a, &sink_b, ids.1, ids.0);
    assert_eq!(addr(&ra["local"]).port(), port_a);
    let (src_a, src_b) = (addr(&ra["audio"]["source"]), addr(&rb["audio"]["source"]));

    let producer = udp("127.0.0.1");
    let from_a = producer_packets(500, 0xaaaa, 1);
    let from_b = producer_packets(500, 0xbbbb, 2);
    let (at_a, at_b) = std::thread::scope(|s| {
        let at_b = s.spawn(|| receive_all(&sink_b, 500, Duration::from_secs(2)));
        let at_a = s.spawn(|| receive_all(&sink_a, 500, Duration::from_secs(2)));
        feed(&producer, src_a, &from_a);
        feed(&producer, src_b, &from_b);
        (at_a.join().unwrap(), at_b.join().unwrap())
    });
    assert_eq!(at_b.len(), 500, "A→B delivered {} of 500", at_b.len());
    assert_eq!(at_a.len(), 500, "B→A delivered {} of 500", at_a.len());
    let sent_payloads = |ps: &[Vec<u8>]| ps.iter().map(|p| p[12..].to_vec()).collect::<Vec<_>>();
    assert_eq!(
        payloads(&at_b),
        sent_payloads(&from_a),
        "A→B payloads differ"
    );
    assert_eq!(
        payloads(&at_a),
        sent_payloads(&from_b),
        "B→A payloads differ"
    );

    // srtpd owns the outgoing sequence: gap-free, one SSRC, the configured payload type.
    let seqs: Vec<u16> = at_b
        .iter()
        .map(|(d, _)| u16::from_be_bytes([d[2], d[3]]))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "sequence not gap-free"
    );
    assert!(at_b.iter().all(|(d, _)| d[1] & 0x7f == 111));

    let stats = cb.ok("call.stats", json!({"call_id": "CALLID-0001"}));
    assert_eq!(stats["audio"]["received"]["packets"], 500);
    assert_eq!(stats["audio"]["received"]["lost"], 0);
    assert_eq!(stats["audio"]["sent"]["packets"], 500);
    assert_eq!(stats["state"], "connected");
    assert_eq!(stats["audio"]["dropped"]["auth"], 0);

    // RTCP both ways (every 500 ms in the test config): each side's RR answers the other's SR,
    // which gives both a round-trip time.
    std::thread::sleep(Duration::from_millis(1300));
    for client in [&mut ca, &mut cb] {
        let stats = client.ok("call.stats", json!({"call_id": "CALLID-0001"}));
        let rtt = stats["rtt_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("no RTT from RTCP: {stats}"));
        assert!((0.0..100.0).contains(&rtt), "loopback RTT {rtt} ms");
    }
}

in_both_layouts! {
fn sdes_call_between_two_daemons_carries_every_packet_both_ways(layout: Layout) {
    let (ka, kb) = (key_b64(1, 30), key_b64(2, 30));
    two_party_call(
        layout,
        json!({"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": ka, "rx": kb}),
        json!({"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": kb, "rx": ka}),
        ("A@s.whatsapp.net", "B.0:7@s.whatsapp.net"),
    );
}

fn wa_e2e_call_between_two_daemons_carries_every_packet_both_ways(layout: Layout) {
    let call_key = B64.encode([9u8; 32]);
    let mut enc = vec![0x52, 0x22, 0x0a, 0x20];
    enc.extend_from_slice(&[9u8; 32]);
    two_party_call(
        layout,
        json!({"scheme": "wa-e2e", "call_key": call_key}),
        json!({"scheme": "wa-e2e", "enc_plaintext": B64.encode(&enc)}),
        ("111111111111111:0@lid", "222222222222222@lid"),
    );
}

fn io_uring_workers_carry_the_same_call(layout: Layout) {
    let daemon = TestDaemon::start_with(layout, "io = \"io_uring\"\n");
    let status = daemon.client().ok("daemon.status", json!({}));
    let workers = status["workers"].as_array().unwrap();
    if workers.iter().any(|w| w["io"] != "io_uring") {
        // This kernel or sandbox has no io_uring; the daemon said so and fell back to epoll.
        daemon.wait_log("io_uring unavailable", Duration::from_secs(5));
        return;
    }
    drop(daemon);
    let (ka, kb) = (key_b64(3, 30), key_b64(4, 30));
    two_party_call_with(
        layout,
        "io = \"io_uring\"\n",
        json!({"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": ka, "rx": kb}),
        json!({"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": kb, "rx": ka}),
        ("A@s.whatsapp.net", "B.0:7@s.whatsapp.net"),
    );
}
}
