//! DTMF both ways through the real binary, in both layouts. From a peer (RFC 4733
//! telephone-events, protected by webrtc-srtp): one `call.dtmf` event per digit, however
//! many times the peer repeats its packets, and never audio at the track's sink. To a peer
//! (`call.dtmf`): packets that an RFC 4733 reader written here from the RFC, over the `rtp`
//! crate's parser and webrtc-srtp, reads back as the digits sent.

mod common;

use std::time::Duration;

use base64::Engine;
use common::daemon::{TestDaemon, addr, receive_all, udp};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::json;
use webrtc_srtp::protection_profile::ProtectionProfile;
use webrtc_util::marshal::Unmarshal;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn key(d: u8) -> Vec<u8> {
    (0..30u8).map(|j| j.wrapping_mul(17) ^ d).collect()
}

/// The packets of one digit as RFC 4733 section 2.5.1 sends it: `tone` packets 20 ms apart
/// with growing durations (8 kHz units), the last one three times with the end bit.
fn digit_packets(event: u8, tone: u16) -> Vec<[u8; 4]> {
    let mut out: Vec<[u8; 4]> = (1..=tone)
        .map(|k| {
            let d = (k * 160).to_be_bytes();
            [event, 10, d[0], d[1]]
        })
        .collect();
    let d = (tone * 160).to_be_bytes();
    out.extend([[event, 0x80 | 10, d[0], d[1]]; 3]);
    out
}

in_both_layouts! {
    fn digits_from_the_peer_are_told_once_each(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        client.ok("events.subscribe", json!({}));
        let mut peer = Peer::new("127.0.0.1", ProtectionProfile::Aes128CmHmacSha1_80, &key(1), &key(0), 16);
        let sink = udp("127.0.0.1");
        let started = client.ok(
            "call.start",
            json!({
                "call_id": "D1", "mute_mode": "drop",
                "candidates": [{"ip": "127.0.0.1", "port": peer.addr().port()}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                           "tx": B64.encode(key(0)), "rx": B64.encode(key(1))},
                "audio": {"payload_type": 111, "clock_rate": 48000,
                          "sink": {"kind": "rtp", "forward": sink.local_addr().unwrap()}},
            }),
        );
        let media = addr(&started["local"]);
        // Audio, then 1, 2, #, each with its retransmissions, then audio again.
        let mut seq = 0u16;
        let mut ts = 0u32;
        let mut send = |peer: &mut Peer, pt: u8, ts: u32, payload: &[u8]| {
            seq += 1;
            peer.send_rtp(&rtp_packet(pt, seq, ts, 0xd7d7, payload), media);
        };
        send(&mut peer, 111, ts, &[0xf8, 0xff, 0xfe]);
        for event in [1u8, 2, 11] {
            ts += 960 * 10;
            for payload in digit_packets(event, 5) {
                send(&mut peer, 101, ts, &payload);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        send(&mut peer, 111, ts + 960 * 10, &[0xf8, 0xff, 0xfe]);
        assert_eq!(client.dtmf_digits("D1", 3, Duration::from_secs(2)), "12#");
        assert!(client.wait_event("call.dtmf", Some("D1"), Duration::from_millis(300)).is_none(), "once each");
        // Only the two audio packets reached the sink.
        let forwarded = receive_all(&sink, 100, Duration::from_millis(300));
        assert_eq!(forwarded.len(), 2);
        assert!(forwarded.iter().all(|(p, _)| p[1] & 0x7f == 111));
        let stats = client.ok("call.stats", json!({"call_id": "D1"}));
        assert_eq!(stats["audio"]["received"]["packets"], 2 + 3 * 8, "{stats}");
    }

    fn a_dtmf_payload_type_that_collides_is_refused(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let start = |pt: u8, dtmf: u8| json!({
            "call_id": "D2",
            "candidates": [{"ip": "127.0.0.1", "port": 9}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": B64.encode(key(0)), "rx": B64.encode(key(1))},
            "audio": {"payload_type": pt, "clock_rate": 8000, "dtmf_payload_type": dtmf},
        });
        for (pt, dtmf) in [(0, 0), (0, 72), (0, 200)] {
            let (code, message) = client.call("call.start", start(pt, dtmf)).unwrap_err();
            assert_eq!(code, -32602);
            assert!(message.contains("audio.dtmf_payload_type"), "{message}");
        }
        client.ok("call.start", start(0, 96));
    }
}

/// The digits an RFC 4733 section 2.5.2 receiver reads from `packets` of payload type `pt`:
/// one per event start timestamp, with its final duration and how many end packets it had.
fn read_digits(packets: &[Vec<u8>], pt: u8) -> Vec<(char, u16, usize)> {
    let mut digits: Vec<(u32, char, u16, usize)> = Vec::new();
    for raw in packets {
        let mut buf = &raw[..];
        let p = rtp::packet::Packet::unmarshal(&mut buf).expect("an RTP packet");
        if p.header.payload_type != pt {
            continue;
        }
        let e = &p.payload;
        assert_eq!(e.len(), 4, "one event per packet");
        let digit = "0123456789*#ABCD"
            .chars()
            .nth(usize::from(e[0]))
            .expect("a DTMF event");
        let end = e[1] & 0x80 != 0;
        assert_eq!(e[1] & 0x3f, 10, "volume -10 dBm0");
        let duration = u16::from_be_bytes([e[2], e[3]]);
        match digits.iter_mut().find(|d| d.0 == p.header.timestamp) {
            Some(d) => {
                assert_eq!(d.1, digit);
                assert!(duration >= d.2, "durations grow");
                d.2 = duration;
                d.3 += usize::from(end);
            }
            None => {
                assert!(p.header.marker, "an event's first packet has the marker");
                digits.push((p.header.timestamp, digit, duration, usize::from(end)));
            }
        }
    }
    digits.into_iter().map(|d| (d.1, d.2, d.3)).collect()
}

in_both_layouts! {
    fn digits_sent_with_call_dtmf_read_back_at_the_peer(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let mut peer = Peer::new("127.0.0.1", ProtectionProfile::Aes128CmHmacSha1_80, &key(1), &key(0), 16);
        client.ok(
            "call.start",
            json!({
                "call_id": "D3", "mute_mode": "drop",
                "candidates": [{"ip": "127.0.0.1", "port": peer.addr().port()}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                           "tx": B64.encode(key(0)), "rx": B64.encode(key(1))},
                "audio": {"payload_type": 0, "clock_rate": 8000},
            }),
        );
        peer.pump(Duration::from_millis(300), 0);
        let r = client.ok("call.dtmf", json!({"call_id": "D3", "digits": "1#9"}));
        assert_eq!(r, json!({"call_id": "D3", "digits": "1#9", "duration_ms": 100}));
        let (code, message) = client.call("call.dtmf", json!({"call_id": "D3", "digits": "5"})).unwrap_err();
        assert_eq!(code, -32602);
        assert!(message.contains("being sent"), "{message}");
        // Three digits of 100 ms: five packets and two more end packets each, then a pause.
        peer.pump(Duration::from_secs(3), 3 * 7);
        let read = read_digits(&peer.seen.rtp, 101);
        assert_eq!(read, [('1', 800, 3), ('#', 800, 3), ('9', 800, 3)]);
        for (digits, duration, field) in [("12x", 100, "digits"), ("", 100, "digits"), ("1", 10, "duration_ms")] {
            let (code, message) = client
                .call("call.dtmf", json!({"call_id": "D3", "digits": digits, "duration_ms": duration}))
                .unwrap_err();
            assert_eq!(code, -32602);
            assert!(message.contains(field), "{message}");
        }
    }
}
