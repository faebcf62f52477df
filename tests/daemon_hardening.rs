//! What a careless or hostile control client, and hostile addresses in requests, get from the
//! real binary: refusals that name what is wrong and change nothing (unknown fields, call ids,
//! payload types, candidates, files), ids echoed exactly, bounded connections and lines, and
//! events that are never lost silently.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Client, Layout, TestDaemon, addr, udp};
use serde_json::{Value, json};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn start_params(call_id: &str, peer: std::net::SocketAddr) -> Value {
    json!({
        "call_id": call_id,
        "candidates": [{"ip": peer.ip(), "port": peer.port()}],
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": KEY, "rx": KEY},
        "audio": {"payload_type": 111, "clock_rate": 48000},
    })
}

fn error(client: &mut Client, method: &str, params: Value) -> (i64, String) {
    client
        .call(method, params)
        .expect_err("the request is refused")
}

fn calls(client: &mut Client) -> usize {
    client.ok("call.list", json!({})).as_array().unwrap().len()
}

in_both_layouts! {
    fn unknown_fields_are_refused_by_name(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        let peer = udp("127.0.0.1");
        let mut p = start_params("U1", peer.local_addr().unwrap());
        p["brige"] = json!({"url": "ws://127.0.0.1:1/"});
        let (code, message) = error(&mut c, "call.start", p);
        assert_eq!(code, -32602);
        assert!(message.contains("`brige`") && message.contains("`call_id`"), "{message}");
        let mut p = start_params("U1", peer.local_addr().unwrap());
        p["audio"]["sourse"] = json!({"kind": "rtp"});
        let (_, message) = error(&mut c, "call.start", p);
        assert!(message.contains("audio") && message.contains("`sourse`"), "{message}");
        let mut p = start_params("U1", peer.local_addr().unwrap());
        p["keying"]["rx_key"] = json!(KEY);
        let (code, message) = error(&mut c, "call.start", p);
        assert_eq!(code, -32602, "{message}");
        assert!(message.contains("`rx_key`"), "{message}");
        assert!(!message.contains(KEY), "the key is not echoed: {message}");
        for method in ["call.list", "daemon.status", "events.subscribe"] {
            let (code, message) = error(&mut c, method, json!({"verbose": true}));
            assert_eq!(code, -32602, "{method}");
            assert!(message.contains("verbose"), "{method}: {message}");
        }
        let (code, _) = error(&mut c, "call.stats", json!({"call_id": "U1", "extra": 1}));
        assert_eq!(code, -32602);
        assert_eq!(calls(&mut c), 0, "nothing was started");
    }

    fn call_ids_are_short_printable_text(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        for bad in [
            "C1\n2026-12-03T00:00:00Z INFO forged line".to_owned(),
            "C1\u{1b}[2J".to_owned(),
            "C1\0".to_owned(),
            "C".repeat(129),
        ] {
            let (code, message) = error(&mut c, "call.start", start_params(&bad, peer));
            assert_eq!(code, -32602, "{bad:?}");
            assert!(message.contains("call_id"), "{message}");
        }
        c.ok("call.start", start_params(&"C".repeat(128), peer));
        assert_eq!(calls(&mut c), 1);
        // Once the accepted call's start is logged, everything before it is too.
        let log = daemon.wait_log(&"C".repeat(128), Duration::from_secs(5));
        assert!(!log.contains("forged line"), "nothing of a refused id is logged raw");
    }

    fn payload_types_that_collide_with_rtcp_are_refused(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        for pt in [72, 95, 200] {
            let mut p = start_params("P1", peer);
            p["audio"]["payload_type"] = json!(pt);
            let (code, message) = error(&mut c, "call.start", p);
            assert_eq!(code, -32602, "{pt}");
            assert!(message.contains("audio.payload_type"), "{message}");
        }
        assert_eq!(calls(&mut c), 0);
    }

    fn hostile_candidates_are_refused(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        for (ip, why) in [
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
        ] {
            let mut p = start_params("H1", peer);
            p["candidates"] = json!([{"ip": ip, "port": 5000}]);
            let (code, message) = error(&mut c, "call.start", p);
            assert_eq!(code, -32602, "{ip}");
            assert!(message.contains("candidates[0]") && message.contains(why), "{message}");
        }
        let mut p = start_params("H1", peer);
        p["candidates"] = json!((0..17).map(|i| json!({"ip": "127.0.0.1", "port": 5000 + i})).collect::<Vec<_>>());
        let (code, message) = error(&mut c, "call.start", p);
        assert_eq!(code, -32602);
        assert!(message.contains("17 candidates"), "{message}");

        // A call's own sockets: its media port, and its producer port, as another call's
        // candidate (one seed packet would loop at wire speed).
        let mut p = start_params("H2", peer);
        p["audio"]["source"] = json!({"kind": "rtp"});
        let started = c.ok("call.start", p);
        for own in [addr(&started["local"]), addr(&started["audio"]["source"])] {
            let mut p = start_params("H3", peer);
            p["candidates"] = json!([{"ip": "127.0.0.1", "port": own.port()}]);
            let (code, message) = error(&mut c, "call.start", p);
            assert_eq!(code, -32602, "{own}");
            assert!(message.contains("own sockets"), "{message}");
        }
        assert_eq!(calls(&mut c), 1);
    }

    fn recordings_do_not_replace_files_unless_asked(layout: Layout) {
        let daemon = TestDaemon::start_with(
            layout,
            &format!("files_dir = {:?}\n", daemon_files_dir()),
        );
        let dir = daemon_files_dir();
        let mut c = daemon.client();
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        c.ok("call.start", start_params("R1", peer));
        let existing = dir.join(format!("existing-{}-{layout:?}.opus", std::process::id()));
        std::fs::write(&existing, b"precious").unwrap();
        let (code, message) = error(
            &mut c,
            "call.record",
            json!({"call_id": "R1", "path": existing}),
        );
        assert_eq!(code, -32602);
        assert!(message.contains("overwrite"), "{message}");
        assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
        let (code, message) = error(
            &mut c,
            "call.record",
            json!({"call_id": "R1", "path": "../escape.opus"}),
        );
        assert_eq!(code, -32602);
        assert!(message.contains("files_dir"), "{message}");
        let relative = format!("rel-{}-{:?}.opus", std::process::id(), layout);
        c.ok("call.record", json!({"call_id": "R1", "path": relative}));
        assert!(dir.join(&relative).exists(), "a relative path is inside files_dir");
        c.ok("call.record", json!({"call_id": "R1", "path": existing, "overwrite": true}));
        c.ok("call.record", json!({"call_id": "R1", "path": null}));
        assert_ne!(std::fs::read(&existing).unwrap(), b"precious");
        std::fs::remove_file(&existing).unwrap();
        std::fs::remove_file(dir.join(&relative)).unwrap();
    }

    fn a_fifo_is_refused_at_once(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        // Held for the whole test: a port released could become one of srtpd's own.
        let peer_socket = udp("127.0.0.1");
        let peer = peer_socket.local_addr().unwrap();
        c.ok("call.start", start_params("F1", peer));
        let fifo = daemon.dir.path().join("fifo.opus");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let began = Instant::now();
        for (method, params, field) in [
            ("call.play", json!({"call_id": "F1", "path": fifo}), "path"),
            ("call.record", json!({"call_id": "F1", "path": fifo, "overwrite": true}), "path"),
        ] {
            let (code, message) = error(&mut c, method, params);
            assert_eq!(code, -32602, "{method}");
            assert!(message.contains(field) && message.contains("regular"), "{message}");
        }
        let mut p = start_params("F2", peer);
        p["audio"]["source"] = json!({"kind": "file", "path": fifo});
        let (code, message) = error(&mut c, "call.start", p);
        assert_eq!(code, -32602);
        assert!(message.contains("audio.source.path"), "{message}");
        assert!(began.elapsed() < Duration::from_secs(5), "refused without waiting on the FIFO");
        c.ok("daemon.status", json!({}));
    }
}

/// Where the recording test's daemons keep relative paths.
fn daemon_files_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("srtpd-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn ids_come_back_exactly_as_sent() {
    let daemon = TestDaemon::start(Layout::PerCall);
    let stream = UnixStream::connect(&daemon.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for id in [
        "18446744073709551615",
        "123456789012345678901234567890",
        "1.50",
        "\"x\\u0041\"",
    ] {
        writeln!(
            writer,
            r#"{{"jsonrpc":"2.0","id":{id},"method":"call.list"}}"#
        )
        .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(&format!(r#""id":{id},"#)), "{id}: {line}");
    }
}

#[test]
fn subscribe_and_start_in_one_write_always_deliver_call_started() {
    let daemon = TestDaemon::start(Layout::PerCall);
    // Held for the whole test: a port released could become one of srtpd's own.
    let peer_socket = udp("127.0.0.1");
    let peer = peer_socket.local_addr().unwrap();
    let mut c = daemon.client();
    for i in 0..200 {
        let mut s = Client::connect(&daemon.socket);
        let id = format!("S{i}");
        let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe"});
        let start = json!({"jsonrpc": "2.0", "id": 2, "method": "call.start", "params": start_params(&id, peer)});
        s.send_raw(format!("{subscribe}\n{start}\n").as_bytes());
        assert!(
            s.wait_event("call.started", Some(&id), Duration::from_secs(5))
                .is_some(),
            "run {i}: call.started was not delivered"
        );
        c.ok("call.terminate", json!({"call_id": id}));
    }
}

#[test]
fn connections_are_capped_and_unfinished_lines_time_out() {
    let daemon = TestDaemon::start_with(
        Layout::PerCall,
        "[control]\nmax_connections = 4\nline_timeout_ms = 300\n",
    );
    // The start-up probe's connection is gone once the daemon has seen it close.
    std::thread::sleep(Duration::from_millis(300));
    let mut held: Vec<Client> = (0..4).map(|_| daemon.client()).collect();
    for c in &mut held {
        c.ok("daemon.status", json!({}));
    }
    let mut fifth = UnixStream::connect(&daemon.socket).unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    fifth.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("-32006") && answer.contains("max_connections"),
        "{answer}"
    );

    // An idle client stays; one that begins a line and does not end it is closed.
    std::thread::sleep(Duration::from_millis(500));
    held[0].ok("daemon.status", json!({}));
    held[1].send_raw(br#"{"jsonrpc":"2.0","id":1,"method":"#);
    let line = held[1].read_line().expect("an error before the close");
    assert_eq!(line["error"]["code"], -32600, "{line}");
    assert!(
        line["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 ms"),
        "{line}"
    );
    assert!(held[1].read_line().is_none(), "closed");
    // Its slot is free again.
    drop(held.remove(1));
    std::thread::sleep(Duration::from_millis(100));
    daemon.client().ok("daemon.status", json!({}));
}

#[test]
fn a_subscriber_that_does_not_read_loses_events_and_is_told() {
    let daemon = TestDaemon::start_with(
        Layout::PerCall,
        "[control]\nqueue_bytes = 65536\n[calls]\nmax_calls = 2000\n",
    );
    let mut slow = daemon.client();
    slow.ok("events.subscribe", json!({}));
    let mut c = daemon.client();
    // Held for the whole test: a port released could become one of srtpd's own.
    let peer_socket = udp("127.0.0.1");
    let peer = peer_socket.local_addr().unwrap();
    // Each call makes a call.started and a call.ended with its statistics: far more than
    // the socket's buffer and the 64 KiB queue hold.
    const CALLS: usize = 1500;
    for i in 0..CALLS {
        let id = format!("E{i}");
        c.ok("call.start", start_params(&id, peer));
        c.ok("call.terminate", json!({"call_id": id}));
    }
    let (mut lost, mut delivered) = (0, 0);
    let mut drain = |slow: &mut Client| {
        while let Some(e) = slow.next_event(Duration::from_millis(300)) {
            match e["event"].as_str() {
                Some("events.lost") => lost += e["count"].as_u64().unwrap(),
                Some("call.started" | "call.ended") => delivered += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
    };
    drain(&mut slow);
    // The next event after the loss carries the count before it.
    c.ok("call.start", start_params("E-last", peer));
    drain(&mut slow);
    assert!(lost > 0, "the slow subscriber was told it lost events");
    assert_eq!(
        lost + delivered,
        2 * CALLS as u64 + 1,
        "every event delivered or counted"
    );
    assert!(
        delivered < CALLS as u64,
        "{delivered} delivered: the queue was not bounded"
    );
    c.ok("daemon.status", json!({}));
}

/// Runs srtpd with `args` and returns its exit code and standard error; a daemon that
/// starts instead of refusing is killed after 5 s, and the test fails.
fn srtpd_refuses(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_srtpd"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("srtpd {args:?} started instead of refusing");
}

#[test]
fn a_runtime_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = open.join("srtpd.sock");
    let (code, err) = srtpd_refuses(&["--socket".as_ref(), socket.as_os_str()]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("others can write") && err.contains("777"),
        "{err}"
    );
    assert!(!socket.exists());
}

#[test]
fn the_socket_is_private_or_shared_with_the_configured_group() {
    let daemon = TestDaemon::start(Layout::PerCall);
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    let grouped = TestDaemon::start_with(
        Layout::PerCall,
        &format!("[control]\nsocket_group = \"{gid}\"\n"),
    );
    let meta = std::fs::metadata(&grouped.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), gid);
    grouped.client().ok("daemon.status", json!({}));
    // Connections are logged with the peer's uid and pid.
    let log = grouped.wait_log(
        &format!("pid=Some({})", std::process::id()),
        std::time::Duration::from_secs(5),
    );
    assert!(log.contains("control client connected"), "{log}");
}

#[test]
fn a_bad_log_level_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("srtpd.toml");
    std::fs::write(&config, "[log]\nlevel = \"verbose\"\n").unwrap();
    let socket = dir.path().join("s.sock");
    let (code, err) = srtpd_refuses(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--socket".as_ref(),
        socket.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("log.level") && err.contains("verbose"),
        "{err}"
    );
    let (code, err) = srtpd_refuses(&[
        "--log-level".as_ref(),
        "verbose".as_ref(),
        "--socket".as_ref(),
        socket.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("verbose"), "{err}");
}

in_both_layouts! {
    fn sends_the_kernel_refuses_count_as_the_calls_send_errors(layout: Layout) {
        const PACKETS: u16 = 20;
        for io in ["epoll", "io_uring"] {
            let daemon = TestDaemon::start_with(layout, &format!("io = \"{io}\"\n"));
            let mut c = daemon.client();
            // Two calls whose peers send media to them; the first forwards it to a broadcast
            // address (the kernel refuses: no SO_BROADCAST), the second to a real sink.
            let sink = udp("127.0.0.1");
            let broadcast = format!("127.255.255.255:{}", sink.local_addr().unwrap().port());
            let mut locals = Vec::new();
            let mut peers = Vec::new();
            for (id, forward) in [("E1", broadcast), ("E2", sink.local_addr().unwrap().to_string())] {
                let peer = common::peer::Peer::new(
                    "127.0.0.1",
                    webrtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
                    &B64.decode(KEY).unwrap(),
                    &B64.decode(KEY).unwrap(),
                    16,
                );
                let mut p = start_params(id, peer.addr());
                p["audio"]["sink"] = json!({"kind": "rtp", "forward": forward});
                p["mute_mode"] = json!("drop");
                locals.push(addr(&c.ok("call.start", p)["local"]));
                peers.push(peer);
            }
            for seq in 1..=PACKETS {
                for (i, peer) in peers.iter_mut().enumerate() {
                    let ssrc = 0x5e00 + i as u32;
                    let plain = common::rtp_packet(111, seq, u32::from(seq) * 960, ssrc, &[1; 40]);
                    peer.send_rtp(&plain, locals[i]);
                }
            }
            let forwarded = common::daemon::receive_all(
                &sink,
                usize::from(PACKETS),
                Duration::from_millis(500),
            );
            assert_eq!(forwarded.len(), usize::from(PACKETS), "{io}: E2's sink");
            let stats = |c: &mut Client, id: &str| c.ok("call.stats", json!({"call_id": id}));
            // E1 runs on a worker of its own; its sends' outcomes may arrive later (io_uring
            // completions).
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut e1 = stats(&mut c, "E1");
            while e1["send_errors"] != PACKETS && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                e1 = stats(&mut c, "E1");
            }
            assert_eq!(e1["audio"]["received"]["packets"], PACKETS, "{io}: {e1}");
            assert_eq!(e1["send_errors"], PACKETS, "{io}: every forward refused: {e1}");
            let e2 = stats(&mut c, "E2");
            assert_eq!(e2["send_errors"], 0, "{io}: {e2}");
            let failed: u64 = c.ok("daemon.status", json!({}))["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["send_failed"].as_u64().unwrap())
                .sum();
            assert_eq!(failed, u64::from(PACKETS), "{io}: the workers count them too");
            let ended = c.ok("call.terminate", json!({"call_id": "E1"}));
            assert_eq!(ended["send_errors"], PACKETS, "{io}: the final stats keep them: {ended}");
        }
    }
}
