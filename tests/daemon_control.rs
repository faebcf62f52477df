//! The control socket under bad input, concurrent clients, restarts and signals.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::Engine;
use common::daemon::{Client, TestDaemon};
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn sdes(tx: &str, rx: &str) -> serde_json::Value {
    json!({"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": tx, "rx": rx})
}

fn start_params(call_id: &str, keying: serde_json::Value) -> serde_json::Value {
    json!({
        "call_id": call_id, "bind": "127.0.0.1",
        "candidates": [{"ip": "127.0.0.1", "port": 40100}],
        "keying": keying,
        "audio": {"payload_type": 111, "clock_rate": 48000},
    })
}

in_both_layouts! {
fn malformed_requests_get_json_rpc_errors_and_the_connection_stays_usable(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut c = daemon.client();

    c.send_raw(b"{this is not json\n");
    let r = c.read_line().unwrap();
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], json!(null));

    c.send_raw(b"[1,2,3]\n");
    assert_eq!(c.read_line().unwrap()["error"]["code"], -32600);
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":7}\n");
    let r = c.read_line().unwrap();
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32600), json!(5))
    );

    let (code, msg) = c.call("call.dance", json!({})).unwrap_err();
    assert_eq!(code, -32601);
    assert!(msg.contains("call.dance"), "{msg}");

    let (code, msg) = c.call("call.stats", json!({})).unwrap_err();
    assert_eq!(code, -32602);
    assert!(msg.contains("call_id"), "{msg}");

    let mut p = start_params("X", sdes("AAAA", "AAAA"));
    p.as_object_mut().unwrap().remove("call_id");
    let (code, msg) = c.call("call.start", p).unwrap_err();
    assert_eq!(code, -32602);
    assert!(msg.contains("missing field `call_id`"), "{msg}");

    let (code, msg) = c
        .call("call.start", json!({"call_id": "X", "keying": sdes("a", "b"), "audio": {"payload_type": "x", "clock_rate": 1}}))
        .unwrap_err();
    assert_eq!(code, -32602);
    assert!(msg.contains("audio.payload_type"), "{msg}");

    let good = B64.encode([1u8; 30]);
    let (code, msg) = c
        .call("call.start", start_params("X", sdes("%%%", &good)))
        .unwrap_err();
    assert_eq!(code, -32004);
    assert!(msg.contains("tx") && msg.contains("base64"), "{msg}");
    let (code, msg) = c
        .call(
            "call.start",
            start_params("X", sdes(&good, &B64.encode([1u8; 16]))),
        )
        .unwrap_err();
    assert_eq!(code, -32004);
    assert!(msg.contains("rx: 16 bytes, expected 30"), "{msg}");
    let (code, msg) = c
        .call(
            "call.start",
            start_params(
                "X",
                json!({"scheme": "wa-e2e", "call_key": B64.encode([0u8; 31])}),
            ),
        )
        .unwrap_err();
    assert_eq!(code, -32602, "wa-e2e without self/peer: {msg}");
    let mut p = start_params(
        "X",
        json!({"scheme": "wa-e2e", "call_key": B64.encode([0u8; 31])}),
    );
    p["self"] = json!("1@lid");
    p["peer"] = json!("2@lid");
    let (code, msg) = c.call("call.start", p).unwrap_err();
    assert_eq!(code, -32004);
    assert!(msg.contains("call_key: 31 bytes, expected 32"), "{msg}");

    assert_eq!(
        c.call("call.terminate", json!({"call_id": "nope"}))
            .unwrap_err()
            .0,
        -32001
    );
    assert_eq!(
        c.call(
            "call.mute",
            json!({"call_id": "nope", "media": "audio", "muted": true})
        )
        .unwrap_err()
        .0,
        -32001
    );

    // Nothing was created by any of that, and the connection still works.
    assert_eq!(c.ok("daemon.status", json!({}))["calls"], 0);
    c.ok("call.start", start_params("X", sdes(&good, &good)));
    assert_eq!(
        c.call("call.start", start_params("X", sdes(&good, &good)))
            .unwrap_err()
            .0,
        -32002
    );
    assert_eq!(c.ok("daemon.status", json!({}))["calls"], 1);
}
}

in_both_layouts! {
fn an_oversized_line_is_refused_and_other_clients_are_served(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut other = daemon.client();
    let mut big = daemon.client();
    let mut line =
        br#"{"jsonrpc":"2.0","id":1,"method":"daemon.status","params":{"pad":""#.to_vec();
    line.extend(std::iter::repeat_n(b'x', (1 << 20) + 10));
    line.extend(b"\"}}\n");
    big.send_raw(&line);
    let r = big
        .read_line()
        .expect("an error before the connection closes");
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 1048576")
    );
    assert!(
        big.read_line().is_none(),
        "the oversized connection is closed"
    );

    assert_eq!(other.ok("daemon.status", json!({}))["calls"], 0);
    let mut again = daemon.client();
    assert!(again.ok("daemon.status", json!({}))["version"].is_string());
}
}

in_both_layouts! {
fn many_clients_at_once(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let good = B64.encode([4u8; 30]);
    std::thread::scope(|s| {
        for i in 0..8 {
            let path = daemon.socket.clone();
            let good = good.clone();
            s.spawn(move || {
                let mut c = Client::connect(&path);
                let id = format!("C{i}");
                c.ok("call.start", start_params(&id, sdes(&good, &good)));
                assert_eq!(
                    c.ok("call.stats", json!({"call_id": id}))["call_id"],
                    json!(id)
                );
                c.ok("call.terminate", json!({"call_id": id}));
            });
        }
    });
    assert_eq!(daemon.client().ok("daemon.status", json!({}))["calls"], 0);
}
}

in_both_layouts! {
fn socket_is_private_stale_files_are_replaced_and_a_live_daemon_is_not(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // A second daemon on the same socket refuses to start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srtpd"))
        .arg("--socket")
        .arg(&daemon.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another srtpd is already listening"));

    // A stale socket file from a dead daemon is replaced.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_srtpd"))
        .arg("--socket")
        .arg(&stale)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = [0u8; 200];
    let n = child
        .stdout
        .as_mut()
        .unwrap()
        .read(&mut first_line)
        .unwrap();
    let printed = String::from_utf8_lossy(&first_line[..n]).to_string();
    assert!(printed.contains(&stale.display().to_string()), "{printed}");
    let mut c = Client::connect(&stale);
    assert_eq!(c.ok("daemon.status", json!({}))["calls"], 0);
    c.ok("daemon.shutdown", json!({}));
    assert!(child.wait().unwrap().success());
    assert!(!stale.exists(), "the socket file is removed on shutdown");
}
}

in_both_layouts! {
fn sigterm_ends_calls_with_final_events_and_removes_the_socket(layout: Layout) {
    let mut daemon = TestDaemon::start(layout);
    let mut c = daemon.client();
    c.ok("events.subscribe", json!({}));
    let good = B64.encode([5u8; 30]);
    c.ok("call.start", start_params("S1", sdes(&good, &good)));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(daemon.pid() as i32, libc::SIGTERM) }, 0);
    let ended = c
        .wait_event("call.ended", Some("S1"), Duration::from_secs(5))
        .expect("call.ended on SIGTERM");
    assert_eq!(ended["reason"], "shutdown");
    let status = daemon
        .wait_exit(Duration::from_secs(5))
        .expect("srtpd exits on SIGTERM");
    assert!(status.success());
    assert!(!daemon.socket.exists());
}
}

in_both_layouts! {
fn a_requests_events_reach_its_connection_before_its_answer(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut client = daemon.client();
    client.ok("events.subscribe", json!({}));
    let key = B64.encode([4u8; 30]);
    // Many rounds: the order is a guarantee, not the usual luck of scheduling.
    for round in 0..40 {
        let id = format!("ORDER-{round}");
        client.ok("call.start", start_params(&id, sdes(&key, &key)));
        let before: Vec<String> = client
            .take_read_events()
            .iter()
            .filter(|e| e["call_id"] == id.as_str())
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(before, ["call.started"], "round {round}: call.started before call.start's answer");
        let stats = client.ok("call.terminate", json!({"call_id": id, "reason": "hangup"}));
        let before: Vec<serde_json::Value> = client
            .take_read_events()
            .into_iter()
            .filter(|e| e["call_id"] == id.as_str())
            .collect();
        let ended = before
            .iter()
            .find(|e| e["event"] == "call.ended")
            .unwrap_or_else(|| panic!("round {round}: call.ended before call.terminate's answer: {before:?}"));
        assert_eq!(ended["reason"], "hangup");
        assert_eq!(ended["stats"], stats, "the same final stats");
    }
}
}
