//! The daemon over many calls' lives, through the real binary in both socket layouts: start
//! and terminate cycles leave no descriptors or memory behind, and SIGTERM under many calls
//! ends every call with `call.ended` and the process within two seconds.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Client, TestDaemon, addr, udp};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::{Value, json};
use webrtc_srtp::protection_profile::ProtectionProfile;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

fn start(client: &mut Client, id: &str, peer: std::net::SocketAddr, sink: Value) -> Value {
    client.ok(
        "call.start",
        json!({
            "call_id": id,
            "candidates": [{"ip": peer.ip(), "port": peer.port()}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": KEY, "rx": KEY},
            "audio": {"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp"}, "sink": sink},
        }),
    )
}

/// Open descriptors and resident KiB of process `pid`.
fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (fds, rss)
}

in_both_layouts! {
    fn a_thousand_start_terminate_cycles_leave_nothing_behind(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        // Held for the whole test: a port released could become one of srtpd's own.
        let sink_socket = udp("127.0.0.1");
        let sink = sink_socket.local_addr().unwrap();
        let cycle = |client: &mut Client, i: usize| {
            let id = format!("C{i}");
            start(client, &id, peer, json!({"kind": "rtp", "forward": sink}));
            client.ok("call.terminate", json!({"call_id": id}));
        };
        // Warm-up: the allocator's and the tables' first growth.
        for i in 0..100 {
            cycle(&mut client, i);
        }
        let (fds, rss) = usage(daemon.pid());
        for i in 100..1100 {
            cycle(&mut client, i);
        }
        let (fds_after, rss_after) = usage(daemon.pid());
        assert_eq!(fds_after, fds, "descriptors after 1,000 cycles");
        assert!(rss_after <= rss + 4096, "RSS grew from {rss} to {rss_after} KiB");
        assert_eq!(client.ok("call.list", json!({})), json!([]));
    }

    fn sigterm_under_a_thousand_calls_ends_every_call(layout: Layout) {
        let mut daemon = TestDaemon::start_with(layout, "[calls]\nmax_calls = 1000\n");
        let mut client = daemon.client();
        let mut events = daemon.client();
        events.ok("events.subscribe", json!({}));
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Every hundredth call records what a peer of its own sends it.
        let key = base64::engine::general_purpose::STANDARD.decode(KEY).unwrap();
        let mut recorded = Vec::new();
        for i in 0..1000 {
            if i % 100 == 0 {
                let p = Peer::new("127.0.0.1", ProtectionProfile::Aes128CmHmacSha1_80, &key, &key, 16);
                let sink = json!({"kind": "file", "path": dir.path().join(format!("rec-{i}.opus"))});
                let started = start(&mut client, &format!("T{i}"), p.addr(), sink);
                recorded.push((i, p, addr(&started["local"])));
            } else {
                start(&mut client, &format!("T{i}"), peer, json!({"kind": "none"}));
            }
        }
        for (i, p, local) in &mut recorded {
            for seq in 0..10u16 {
                let ssrc = 0x7000 + *i as u32;
                p.send_rtp(&rtp_packet(111, seq, u32::from(seq) * 960, ssrc, &[0xf8, 0xff, 0xfe]), *local);
            }
        }
        for (i, _, _) in &recorded {
            let deadline = Instant::now() + Duration::from_secs(5);
            while client.ok("call.stats", json!({"call_id": format!("T{i}")}))["audio"]["received"]["packets"] != 10 {
                assert!(Instant::now() < deadline, "T{i} did not receive its packets");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A subscriber reads as the events come, until the daemon closes its connection.
        let reader = std::thread::spawn(move || {
            let mut ended = std::collections::HashSet::new();
            while let Some(e) = events.next_event(Duration::from_secs(5)) {
                if e["event"] == "call.ended" {
                    assert_eq!(e["reason"], "shutdown", "{e}");
                    ended.insert(e["call_id"].as_str().unwrap().to_owned());
                }
            }
            ended
        });
        let began = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(daemon.pid() as i32, libc::SIGTERM) }, 0);
        let status = daemon.wait_exit(Duration::from_secs(10)).expect("srtpd exits");
        let took = began.elapsed();
        assert!(status.success(), "{status}");
        assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
        let ended = reader.join().unwrap();
        assert_eq!(ended.len(), 1000, "every call ended with call.ended");
        for i in (0..1000).step_by(100) {
            // Finished: every packet is in, and the last page carries the end-of-stream flag.
            let path = dir.path().join(format!("rec-{i}.opus"));
            let clip = srtpd::media::AudioClip::load_ogg_opus(&path).unwrap();
            assert_eq!(clip.packets.len(), 10, "rec-{i}");
            let bytes = std::fs::read(&path).unwrap();
            let last_page = bytes
                .windows(4)
                .rposition(|w| w == b"OggS")
                .unwrap_or_else(|| panic!("rec-{i}: no Ogg page"));
            assert_ne!(bytes[last_page + 5] & 0x04, 0, "rec-{i}: no end-of-stream page");
        }
    }
}
