//! The bot bridge's control surface through the real binary, in both layouts: requests that
//! are wrong are refused by field and change nothing; a bot that cannot be reached, or goes
//! away, raises `call.bridge_closed`, and the call goes on (or ends, with `on_close`).

mod common;

use std::time::Duration;

use common::daemon::{TestDaemon, free_port};
use serde_json::{Value, json};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

fn start(call_id: &str, bridge: Value) -> Value {
    json!({
        "call_id": call_id,
        "candidates": [{"ip": "127.0.0.1", "port": 9}],
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": KEY, "rx": KEY},
        "audio": {"payload_type": 111, "clock_rate": 48000},
        "bridge": bridge,
    })
}

in_both_layouts! {
    fn wrong_bridges_are_refused_by_field(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        for (bridge, field) in [
            (json!({"url": "wss://127.0.0.1:1/"}), "bridge.url"),
            (json!({"url": "http://127.0.0.1:1/"}), "bridge.url"),
            (json!({"url": "ws://127.0.0.1:1/", "rate": 16000}), "bridge.rate"),
            (json!({"url": "ws://127.0.0.1:1/", "format": "l16", "rate": 11025}), "bridge.rate"),
            (json!({"url": "ws://127.0.0.1:1/", "format": "g729"}), "format"),
            (json!({"url": "ws://127.0.0.1:1/", "on_close": "explode"}), "on_close"),
            (json!({"url": "ws://127.0.0.1:1/", "uri": "x"}), "uri"),
        ] {
            let (code, message) = c.call("call.start", start("B1", bridge.clone())).unwrap_err();
            assert_eq!(code, -32602, "{bridge}: {message}");
            assert!(message.contains(field), "{bridge}: {message}");
        }
        assert_eq!(c.ok("call.list", json!({})), json!([]), "nothing was started");
        let (code, _) = c
            .call("call.bridge", json!({"call_id": "nope", "url": "ws://127.0.0.1:1/"}))
            .unwrap_err();
        assert_eq!(code, -32001);
        let mut p = start("B2", Value::Null);
        p.as_object_mut().unwrap().remove("bridge");
        c.ok("call.start", p);
        let (code, message) = c
            .call("call.bridge", json!({"call_id": "B2", "url": "ws://127.0.0.1:1/", "rate": 8000}))
            .unwrap_err();
        assert_eq!((code, message.contains("rate")), (-32602, true), "{message}");
        assert_eq!(
            c.ok("call.bridge", json!({"call_id": "B2", "url": null})),
            json!({"call_id": "B2", "bridged": false})
        );
    }

    fn a_bot_that_cannot_be_reached_is_told_and_the_call_goes_on_or_ends(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        c.ok("events.subscribe", json!({}));
        // Nothing listens there.
        let url = format!("ws://127.0.0.1:{}/bot", free_port("127.0.0.1"));
        c.ok("call.start", start("B3", json!({"url": url})));
        let closed = c
            .wait_event("call.bridge_closed", Some("B3"), Duration::from_secs(8))
            .expect("call.bridge_closed");
        assert!(closed["reason"].as_str().unwrap().contains("cannot connect"), "{closed}");
        let stats = c.ok("call.stats", json!({"call_id": "B3"}));
        assert!(stats.get("bridge").is_none(), "detached: {stats}");
        c.ok("call.start", start("B4", json!({"url": url, "on_close": "terminate"})));
        let ended = c
            .wait_event("call.ended", Some("B4"), Duration::from_secs(8))
            .expect("call.ended");
        assert_eq!(ended["reason"], "bridge_closed");
        let ids: Vec<Value> = c
            .ok("call.list", json!({}))
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["call_id"].clone())
            .collect();
        assert_eq!(ids, [json!("B3")]);
    }
}

/// A bot on tungstenite (blocking, one connection): reads until `stop`, then closes its side
/// as a polite bot does; sends what it read on `heard`.
fn polite_bot() -> (String, std::sync::mpsc::Receiver<Vec<String>>) {
    use tokio_tungstenite::tungstenite::{Message, accept};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/bot", listener.local_addr().unwrap());
    let (tx, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = accept(stream).unwrap();
        let mut events = Vec::new();
        while let Ok(m) = ws.read() {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            let event = v["event"].as_str().unwrap().to_owned();
            events.push(event.clone());
            if event == "stop" {
                let _ = ws.close(None);
                while ws.read().is_ok() {}
                break;
            }
        }
        let _ = tx.send(events);
    });
    (url, heard)
}

in_both_layouts! {
    fn a_bot_that_closes_once_told_stop_is_no_lost_bridge(layout: Layout) {
        let daemon = TestDaemon::start(layout);
        let mut c = daemon.client();
        c.ok("events.subscribe", json!({}));
        let (url, heard) = polite_bot();
        c.ok("call.start", start("B5", json!({"url": url})));
        std::thread::sleep(Duration::from_millis(300));
        // The bot has the call's audio: a clip is refused, by field, and changes nothing.
        let clip = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.opus");
        let (code, message) = c
            .call("call.play", json!({"call_id": "B5", "path": clip}))
            .unwrap_err();
        assert_eq!(code, -32602, "{message}");
        assert!(message.contains("media: ") && message.contains("bridged to a bot"), "{message}");
        assert!(c.ok("call.stats", json!({"call_id": "B5"})).get("bridge").is_some());
        c.ok("call.terminate", json!({"call_id": "B5"}));
        let events = heard.recv_timeout(Duration::from_secs(5)).expect("the bot's stream ended");
        assert_eq!(events.first().map(String::as_str), Some("connected"));
        assert_eq!(events.last().map(String::as_str), Some("stop"));
        assert!(
            c.wait_event("call.bridge_closed", Some("B5"), Duration::from_millis(500)).is_none(),
            "srtpd closed the stream itself"
        );
        assert!(!daemon.log().contains("bridge closed"), "{}", daemon.log());
    }
}
