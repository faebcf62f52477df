//! The Prometheus endpoint of a daemon carrying calls, read by the reference Python client's
//! parser: the exposition parses, its counters match `call.stats`, and they stay when calls
//! end.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::bot::python;
use common::daemon::{TestDaemon, free_port};
use serde_json::{Value, json};

/// `GET path` over HTTP/1.1: the status line, the headers and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: srtpd\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_lowercase(), body.to_owned())
}

/// The samples of `/metrics`, as the Python parser read them.
fn scrape(addr: SocketAddr) -> Vec<Value> {
    let (status, headers, body) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let mut parser = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/bots/prom_parse.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = parser.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` with exactly these labels.
fn sample(samples: &[Value], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .find(|s| s["name"] == name && s["labels"] == labels)
        .unwrap_or_else(|| panic!("no {name} {labels} in {samples:?}"))["value"]
        .as_f64()
        .unwrap()
}

in_both_layouts! {
#[ignore = "needs python3 with prometheus_client (python3-prometheus-client)"]
fn the_counters_match_call_stats_and_outlive_the_calls(layout: Layout) {
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let metrics = |port: u16| format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n[calls]\nrtcp_interval_ms = 300\n");
    let a = TestDaemon::start_with(layout, &metrics(pa));
    let b = TestDaemon::start_with(layout, &metrics(pb));
    let (ma, mb): (SocketAddr, SocketAddr) =
        (format!("127.0.0.1:{pa}").parse().unwrap(), format!("127.0.0.1:{pb}").parse().unwrap());
    let (mut ca, mut cb) = (a.client(), b.client());
    let b64 = |k: u8| base64::engine::general_purpose::STANDARD.encode([k; 30]);
    let calls = ["MET-1", "MET-2"];
    let mut port_a = 0;
    for (i, id) in calls.into_iter().enumerate() {
        // A port per call, or the shared one; keys of its own (in the shared layout, keys
        // are what tell two calls between the same addresses apart).
        let (k1, k2) = (1 + 2 * i as u8, 2 + 2 * i as u8);
        let (pa, pb) = (a.bind_port(), b.bind_port());
        if port_a == 0 {
            port_a = pa;
        }
        for (client, me, peer, tx, rx) in [(&mut ca, pa, pb, b64(k1), b64(k2)), (&mut cb, pb, pa, b64(k2), b64(k1))] {
            client.ok("call.start", json!({
                "call_id": id, "bind": format!("127.0.0.1:{me}"),
                "candidates": [{"ip": "127.0.0.1", "port": peer}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": tx, "rx": rx},
                "mute_mode": "drop",
                "audio": {"payload_type": 111, "clock_rate": 48000, "source": {"kind": "silence"}},
            }));
        }
    }
    std::thread::sleep(Duration::from_millis(1200));
    // Quiet the calls (drop mode: muted sends nothing), so stats and scrape see the same.
    for client in [&mut ca, &mut cb] {
        for id in calls {
            client.ok("call.mute", json!({"call_id": id, "media": "audio", "muted": true}));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let sum = |client: &mut common::daemon::Client, path: &[&str]| -> f64 {
        calls
            .iter()
            .map(|id| {
                let s = client.ok("call.stats", json!({"call_id": id}));
                path.iter().fold(&s, |v, k| &v[k]).as_f64().unwrap()
            })
            .sum()
    };
    let running = scrape(ma);
    let sent = sum(&mut ca, &["audio", "sent", "packets"]);
    let received = sum(&mut ca, &["audio", "received", "packets"]);
    assert!(sent > 40.0 && received > 40.0, "media flowed: {sent} {received}");
    let audio = |dir: &str| json!({"direction": dir, "media": "audio"});
    assert_eq!(sample(&running, "srtpd_packets_total", audio("sent")), sent);
    assert_eq!(sample(&running, "srtpd_packets_total", audio("received")), received);
    assert_eq!(
        sample(&running, "srtpd_payload_bytes_total", audio("sent")),
        sum(&mut ca, &["audio", "sent", "bytes"])
    );
    assert_eq!(sample(&running, "srtpd_calls", json!({})), 2.0);
    assert_eq!(sample(&running, "srtpd_calls_started_total", json!({})), 2.0);
    assert_eq!(sample(&running, "srtpd_dropped_datagrams_total", json!({"reason": "srtp_auth"})), 0.0);
    assert_eq!(sample(&running, "srtpd_build_info", json!({"version": env!("CARGO_PKG_VERSION")})), 1.0);
    let in_by_workers: f64 = running
        .iter()
        .filter(|s| s["name"] == "srtpd_worker_datagrams_received_total")
        .map(|s| s["value"].as_f64().unwrap())
        .sum();
    assert!(in_by_workers >= received, "{in_by_workers} datagrams for {received} packets");

    // Forged datagrams at a call's socket: dropped, and counted under some reason, as
    // call.stats and daemon.status count them.
    let drops = |samples: &[Value]| -> f64 {
        samples
            .iter()
            .filter(|s| s["name"] == "srtpd_dropped_datagrams_total")
            .map(|s| s["value"].as_f64().unwrap())
            .sum()
    };
    let forger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..5u16 {
        let mut p = common::rtp_packet(111, seq, 960 * u32::from(seq), 0x5eed, &[7; 40]);
        p.extend_from_slice(&[0xab; 10]);
        forger.send_to(&p, ("127.0.0.1", port_a)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let forged = scrape(ma);
    assert_eq!(drops(&forged), drops(&running) + 5.0, "every forged datagram is counted once");
    assert_eq!(
        sample(&forged, "srtpd_dropped_datagrams_total", json!({"reason": "srtp_auth"})),
        sum(&mut ca, &["audio", "dropped", "auth"])
    );
    let status = ca.ok("daemon.status", json!({}));
    let unclaimed: u64 = status["workers"].as_array().unwrap().iter().map(|w| w["unclaimed"].as_u64().unwrap()).sum();
    assert_eq!(
        sample(&forged, "srtpd_dropped_datagrams_total", json!({"reason": "unclaimed"})),
        unclaimed as f64
    );

    // Ending the calls keeps their traffic in the counters.
    let mut final_sent = 0.0;
    for id in calls {
        let end = ca.ok("call.terminate", json!({"call_id": id, "reason": "hangup"}));
        final_sent += end["audio"]["sent"]["packets"].as_f64().unwrap();
    }
    let ended = scrape(ma);
    assert_eq!(sample(&ended, "srtpd_packets_total", audio("sent")), final_sent);
    assert_eq!(final_sent, sent, "muted calls sent nothing more");
    assert_eq!(sample(&ended, "srtpd_calls", json!({})), 0.0);
    assert_eq!(sample(&ended, "srtpd_calls_ended_total", json!({"reason": "hangup"})), 2.0);
    assert_eq!(sample(&ended, "srtpd_call_jitter_seconds_count", json!({"media": "audio"})), 2.0);
    assert_eq!(sample(&ended, "srtpd_call_loss_ratio_count", json!({"media": "audio"})), 2.0);
    assert_eq!(
        sample(&ended, "srtpd_control_requests_total", json!({"method": "call.terminate"})),
        2.0
    );
    // Errors are counted by method and code.
    assert!(ca.call("call.stats", json!({"call_id": "MET-1"})).is_err());
    let after = scrape(ma);
    assert_eq!(
        sample(&after, "srtpd_control_errors_total", json!({"method": "call.stats", "code": "-32001"})),
        1.0
    );
    // The other daemon answers too, and only /metrics is served.
    assert!(sample(&scrape(mb), "srtpd_packets_total", audio("received")) > 40.0);
    assert!(get(ma, "/").0.contains("404"));
}
}

#[test]
fn the_endpoint_answers_one_request_a_connection_and_only_get_metrics() {
    let port = free_port("127.0.0.1");
    let daemon = TestDaemon::start_with(
        common::daemon::Layout::PerCall,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Two requests on one keep-alive connection: one answer, then the server closes, so
    // idle connections cannot hold the endpoint's few slots.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let one = "GET /metrics HTTP/1.1\r\nHost: srtpd\r\n\r\n";
    write!(s, "{one}{one}").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .expect("the server closes the connection");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{text}");
    assert!(text.contains("srtpd_calls 0"), "{text}");
    // Anything but GET (or HEAD) /metrics is refused.
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /metrics HTTP/1.1\r\nHost: srtpd\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    assert!(get(addr, "/other").0.contains("404"));
    drop(daemon);
}
