//! DTMF (RFC 4733) against an implementation nobody here wrote: GStreamer. Its `rtpdtmfsrc`
//! sends digits over SRTP (`srtpenc`) into srtpd, which tells them once per digit as
//! `call.dtmf` events and as the bot's `dtmf` messages; digits sent with `call.dtmf` are read
//! back by `srtpdec ! rtpdtmfdepay`. The GStreamer side is tests/bots/gst_dtmf.py. Needs
//! GStreamer's plugins and its Python bindings, so it is ignored by a plain `cargo test`;
//! .ci/run installs them and runs it with `cargo test -- --ignored`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::bot::{Bot, python};
use common::daemon::{TestDaemon, free_port};
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const GST_DTMF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bots/gst_dtmf.py");

fn key(d: u8) -> Vec<u8> {
    (0..30u8).map(|j| j.wrapping_mul(29) ^ d).collect()
}

/// A PCMU call on loopback with one candidate, keyed per direction, and `bridge` if not null.
fn start_params(call_id: &str, candidate_port: u16, bridge: Value) -> Value {
    let mut params = json!({
        "call_id": call_id, "mute_mode": "drop",
        "candidates": [{"ip": "127.0.0.1", "port": candidate_port}],
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                   "tx": B64.encode(key(0)), "rx": B64.encode(key(1))},
        "audio": {"payload_type": 0, "clock_rate": 8000},
    });
    if !bridge.is_null() {
        params["bridge"] = bridge;
    }
    params
}

in_both_layouts! {
    #[ignore = "needs GStreamer and python3 with gi and websockets; run by .ci/run"]
    fn digits_from_rtpdtmfsrc_reach_the_bot_once_each(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        client.ok("events.subscribe", json!({}));
        let bot = Bot::start();
        let gst_port = free_port("127.0.0.1");
        let r = client.ok(
            "call.start",
            start_params("G1", gst_port, json!({"url": bot.url(), "format": "twilio"})),
        );
        let local = common::daemon::addr(&r["local"]);
        let out = Command::new(python())
            .args([
                GST_DTMF,
                "send",
                &local.port().to_string(),
                &hex::encode(key(1)),
                "8000",
                "19#",
                &gst_port.to_string(),
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "gst_dtmf.py send failed");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sent");
        assert_eq!(client.dtmf_digits("G1", 3, Duration::from_secs(2)), "19#");
        assert!(
            client.wait_event("call.dtmf", Some("G1"), Duration::from_millis(300)).is_none(),
            "once per digit"
        );
        let stats = client.ok("call.stats", json!({"call_id": "G1"}));
        assert_eq!(stats["audio"]["dropped"]["auth"], 0, "{stats}");
        client.ok("call.terminate", json!({"call_id": "G1"}));
        let (_, events) = bot.heard("G1");
        let digits: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "dtmf")
            .map(|e| e["dtmf"]["digit"].as_str().unwrap())
            .collect();
        assert_eq!(digits, ["1", "9", "#"], "the bot is told once per digit: {stats}");
    }

    #[ignore = "needs GStreamer and python3 with gi; run by .ci/run"]
    fn digits_sent_with_call_dtmf_are_read_by_rtpdtmfdepay(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        let gst_port = free_port("127.0.0.1");
        let mut gst = Command::new(python())
            .args([GST_DTMF, "receive", &gst_port.to_string(), &hex::encode(key(0)), "8000", "4"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut lines = BufReader::new(gst.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        client.ok("call.start", start_params("G2", gst_port, Value::Null));
        client.ok("call.dtmf", json!({"call_id": "G2", "digits": "3*7", "duration_ms": 120}));
        let read: Vec<String> = lines.map(Result::unwrap).collect();
        assert!(gst.wait().unwrap().success(), "gst_dtmf.py receive failed");
        assert_eq!(read, ["3", "10", "7"], "one event per digit, in order");
    }
}
