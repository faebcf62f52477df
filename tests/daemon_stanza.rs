//! Calls driven by <call> stanzas through the real daemon: offer rings, accept starts media,
//! the other device drops its ringing call on accepted_elsewhere, mute/mute_v2/video stanzas
//! gate the loops, terminate ends the call.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use base64::Engine;
use common::daemon::{Client, Layout, TestDaemon, addr, receive_all, udp};
use common::rtp_packet;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CALL: &str = "STZ-CALL-1";
const CALLER: &str = "111111111111111:0@lid";
const CALLEE_USER: &str = "222222222222222@lid";
const CALLEE_PHONE: &str = "222222222222222:3@lid";
const CALLEE_LAPTOP: &str = "222222222222222:5@lid";

/// 6-byte te content (IPv4 + port) as hex.
fn te_hex(a: SocketAddr) -> String {
    let SocketAddr::V4(v4) = a else {
        panic!("IPv4 only")
    };
    let mut b = v4.ip().octets().to_vec();
    b.extend_from_slice(&v4.port().to_be_bytes());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn offer(relay: SocketAddr) -> String {
    format!(
        r#"<call from="{CALLER}" to="{CALLEE_USER}" id="O1">
  <offer call-id="{CALL}" call-creator="{CALLER}">
    <audio enc="opus" rate="16000"/><video enc="vp8"/>
    <enc v="2" type="pkmsg">AAAA</enc>
    <relay><te2 relay_id="0" relay_name="lo" priority="1">{}</te2></relay>
  </offer>
</call>"#,
        te_hex(relay)
    )
}

fn accept(from: &str, to: &str, dest: SocketAddr) -> String {
    format!(
        r#"<call from="{from}" to="{to}" id="A1"><accept call-id="{CALL}" call-creator="{CALLER}"><destination><te>{}</te></destination></accept></call>"#,
        te_hex(dest)
    )
}

fn track(pt: u8, clock: u32, sink: &UdpSocket) -> Value {
    json!({"payload_type": pt, "clock_rate": clock, "source": {"kind": "rtp"}, "sink": {"kind": "rtp", "forward": sink.local_addr().unwrap()}})
}

struct Side {
    _daemon: TestDaemon,
    client: Client,
    self_id: &'static str,
    port: u16,
    audio_sink: UdpSocket,
    video_sink: UdpSocket,
    sources: Option<(SocketAddr, SocketAddr)>,
    keying: Value,
}

impl Side {
    fn new(layout: Layout, self_id: &'static str, keying: Value) -> Side {
        let daemon = TestDaemon::start(layout);
        let mut client = daemon.client();
        client.ok("events.subscribe", json!({}));
        Side {
            port: daemon.bind_port(),
            _daemon: daemon,
            client,
            self_id,
            audio_sink: udp("127.0.0.1"),
            video_sink: udp("127.0.0.1"),
            sources: None,
            keying,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn stanza(&mut self, xml: &str) -> Result<Value, (i64, String)> {
        let mut p = json!({
            "xml": xml, "self": self.self_id, "bind": format!("127.0.0.1:{}", self.port),
            "audio": track(120, 16000, &self.audio_sink), "video": track(97, 90000, &self.video_sink),
        });
        for (k, v) in self.keying.as_object().unwrap() {
            p[k] = v.clone();
        }
        let r = self.client.call("call.stanza", p)?;
        if r.get("audio").is_some() {
            self.sources = Some((addr(&r["audio"]["source"]), addr(&r["video"]["source"])));
        }
        Ok(r)
    }

    fn ok(&mut self, xml: &str) -> Value {
        self.stanza(xml).unwrap_or_else(|e| panic!("{xml}: {e:?}"))
    }
}

fn feed(source: SocketAddr, pt: u8, count: u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..count {
        s.send_to(
            &rtp_packet(pt, i, u32::from(i) * 320, 0x42, &[i as u8; 60]),
            source,
        )
        .unwrap();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Feeds `count` packets into `source` while `sink` collects; returns how many of the fed
/// packets arrived (comfort packets of a muted track are not counted).
fn flow(source: SocketAddr, pt: u8, sink: &UdpSocket, count: u16) -> usize {
    std::thread::scope(|s| {
        let r = s.spawn(|| receive_all(sink, usize::from(count), Duration::from_millis(700)));
        feed(source, pt, count);
        let got = r.join().unwrap();
        got.iter()
            .filter(|(d, _)| d[12..] != srtpd::call::OPUS_SILENCE)
            .count()
    })
}

in_both_layouts! {
fn two_daemons_set_up_by_stanzas_and_the_other_device_lets_go(layout: Layout) {
    let key = B64.encode([7u8; 32]);
    let mut enc = vec![0x52, 0x22, 0x0a, 0x20];
    enc.extend_from_slice(&[7u8; 32]);
    let mut a = Side::new(layout, CALLER, json!({"call_key": key}));
    let mut b = Side::new(layout, CALLEE_PHONE, json!({"enc_plaintext": B64.encode(&enc)}));
    let mut c = Side::new(layout, CALLEE_LAPTOP, json!({"call_key": key}));

    // Offers ring on every device; nothing is sent while ringing.
    let (a_addr, b_addr, c_addr) = (a.addr(), b.addr(), c.addr());
    assert_eq!(a.ok(&offer(b_addr))["action"], "ringing");
    assert_eq!(b.ok(&offer(a_addr))["action"], "ringing");
    // The laptop gets the offer as a JSON node: the same result as the XML form.
    let node = json!({"tag": "call", "attrs": {"from": CALLER, "to": CALLEE_USER, "id": "O1"}, "content": [
        {"tag": "offer", "attrs": {"call-id": CALL, "call-creator": CALLER}, "content": [
            {"tag": "audio", "attrs": {"enc": "opus", "rate": "16000"}},
            {"tag": "video", "attrs": {"enc": "vp8"}},
            {"tag": "enc", "attrs": {"v": "2", "type": "pkmsg"}, "content": "AAAA"},
            {"tag": "relay", "content": [{"tag": "te2", "attrs": {"relay_id": "0", "relay_name": "lo", "priority": "1"},
                "content": B64.encode([127, 0, 0, 1, (a_addr.port() >> 8) as u8, a_addr.port() as u8])}]}]}]});
    let from_node = c
        .client
        .ok("call.stanza", json!({"node": node, "self": CALLEE_LAPTOP, "call_key": key, "bind": format!("127.0.0.1:{}", c.port)}));
    let from_xml = c.client.call(
        "call.stanza",
        json!({"xml": offer(a_addr), "self": CALLEE_LAPTOP, "call_key": key}),
    );
    assert_eq!(from_node["action"], "ringing");
    assert_eq!(from_node["local"], json!(c_addr));
    assert_eq!(
        from_xml.unwrap()["action"],
        "ignored",
        "a second offer for the same call"
    );
    assert_eq!(
        c.client.ok("call.stats", json!({"call_id": CALL}))["state"],
        "ringing"
    );

    let (a_audio, _) = a.sources.unwrap();
    assert_eq!(
        flow(a_audio, 96, &b.audio_sink, 20),
        0,
        "media left a ringing call"
    );

    // The phone answers: it starts (the result repeats the bound addresses); the laptop is
    // told accepted_elsewhere and lets go.
    let started = b.ok(&accept(CALLEE_PHONE, CALLER, a_addr));
    assert_eq!(started["action"], "started");
    assert_eq!(started["local"], json!(b_addr));
    assert!(started["audio"]["source"].is_string(), "{started}");
    let ended = c.ok(&format!(
        r#"<call from="{CALLER}" to="{CALLEE_LAPTOP}"><terminate call-id="{CALL}" call-creator="{CALLER}" reason="accepted_elsewhere"/></call>"#
    ));
    assert_eq!(
        (ended["action"].clone(), ended["reason"].clone()),
        (json!("ended"), json!("accepted_elsewhere"))
    );
    let event = c
        .client
        .wait_event("call.ended", Some(CALL), Duration::from_secs(2))
        .expect("call.ended");
    assert_eq!(event["reason"], "accepted_elsewhere");
    std::thread::sleep(Duration::from_millis(100));
    c._daemon.expect_released(c_addr);

    // The caller learns which device answered and re-derives its receive keys for it.
    assert_eq!(
        a.ok(&accept(CALLEE_PHONE, CALLER, b_addr))["action"],
        "started"
    );
    let (a_audio, a_video) = a.sources.unwrap();
    let (b_audio, _) = b.sources.unwrap();
    assert_eq!(
        flow(a_audio, 96, &b.audio_sink, 200),
        200,
        "caller → callee"
    );
    assert_eq!(
        flow(b_audio, 96, &a.audio_sink, 200),
        200,
        "callee → caller"
    );
    assert_eq!(flow(a_video, 100, &b.video_sink, 50), 50, "caller video");

    // Our own mute stanza gates our audio; mute_v2 from the peer is reported.
    assert_eq!(
        a.ok(&format!(r#"<call from="{CALLER}" to="{CALLEE_PHONE}"><mute call-id="{CALL}" media="audio" value="true"/></call>"#))["by"],
        "self"
    );
    assert_eq!(flow(a_audio, 96, &b.audio_sink, 30), 0, "audio while muted");
    a.ok(&format!(r#"<call from="{CALLER}" to="{CALLEE_PHONE}"><mute_v2 call-id="{CALL}" mute-state="0"/></call>"#));
    assert_eq!(
        flow(a_audio, 96, &b.audio_sink, 30),
        30,
        "audio after unmute"
    );

    let r = a.ok(&format!(r#"<call from="{CALLEE_PHONE}" to="{CALLER}"><mute_v2 call-id="{CALL}" mute-state="1"/></call>"#));
    assert_eq!(
        (r["action"].clone(), r["by"].clone()),
        (json!("muted"), json!("peer"))
    );
    assert_eq!(
        a.client.ok("call.stats", json!({"call_id": CALL}))["peer_muted"],
        true
    );
    let state = a
        .client
        .wait_event("call.peer_state", Some(CALL), Duration::from_secs(1))
        .expect("call.peer_state");
    assert_eq!(state["muted"], true);

    // Video: ours off (wire state 6) stops the video loop, on (1) restarts it; the peer's is recorded.
    a.ok(&format!(
        r#"<call from="{CALLER}"><video call-id="{CALL}" state="6"/></call>"#
    ));
    assert_eq!(flow(a_video, 100, &b.video_sink, 30), 0, "video while off");
    a.ok(&format!(
        r#"<call from="{CALLER}"><video call-id="{CALL}" state="1"/></call>"#
    ));
    assert_eq!(flow(a_video, 100, &b.video_sink, 30), 30, "video back on");
    a.ok(&format!(
        r#"<call from="{CALLEE_PHONE}"><video call-id="{CALL}" state="2"/></call>"#
    ));
    assert_eq!(
        a.client.ok("call.stats", json!({"call_id": CALL}))["peer_video"],
        false
    );
    assert_eq!(
        a.ok(&format!(
            r#"<call from="{CALLEE_PHONE}"><video call-id="{CALL}" state="3"/></call>"#
        ))["action"],
        "ignored",
        "an upgrade request changes nothing"
    );

    // Terminate ends both with the reason.
    let r = b.ok(&format!(
        r#"<call from="{CALLER}"><terminate call-id="{CALL}" reason="timeout"/></call>"#
    ));
    assert_eq!(r["reason"], "timeout");
    assert!(
        r["stats"]["audio"]["received"]["packets"].as_u64().unwrap() >= 230,
        "{r}"
    );
    a.ok(&format!(
        r#"<call from="{CALLER}"><terminate call-id="{CALL}"/></call>"#
    ));
    let ended = a
        .client
        .wait_event("call.ended", Some(CALL), Duration::from_secs(2))
        .expect("call.ended");
    assert_eq!(ended["reason"], "terminated");
}
}

in_both_layouts! {
fn bad_stanzas_are_refused_and_change_nothing(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let mut c = daemon.client();
    let key = B64.encode([1u8; 32]);
    let mut try_xml = |xml: &str| {
        c.call(
            "call.stanza",
            json!({"xml": xml, "self": CALLER, "call_key": key}),
        )
        .unwrap_err()
    };
    let (code, msg) = try_xml("<call><accept");
    assert_eq!(code, -32602);
    assert!(msg.contains("xml: stanza is not XML"), "{msg}");
    let (code, msg) = try_xml(r#"<iq id="1"/>"#);
    assert_eq!(code, -32602);
    assert!(msg.contains("<iq>, not <call>"), "{msg}");
    let (code, msg) = try_xml(r#"<call><accept call-creator="x"/></call>"#);
    assert_eq!(code, -32602);
    assert!(
        msg.contains("<accept> lacks the call-id attribute"),
        "{msg}"
    );
    let (code, msg) = try_xml(
        r#"<call><accept call-id="k"><destination><te>7f00000101</te></destination></accept></call>"#,
    );
    assert_eq!(code, -32602);
    assert!(msg.contains("5 bytes"), "{msg}");
    let (code, msg) = try_xml(r#"<call><mute call-id="nope" value="true"/></call>"#);
    assert_eq!(code, -32001, "{msg}");
    let (code, _) = try_xml(r#"<call><terminate call-id="nope"/></call>"#);
    assert_eq!(code, -32001);
    let (code, _) = try_xml(r#"<call><video call-id="nope" state="1"/></call>"#);
    assert_eq!(code, -32001);
    let (code, msg) = c
        .call(
            "call.stanza",
            json!({"xml": "<call/>", "node": {"tag": "call"}, "self": CALLER}),
        )
        .unwrap_err();
    assert_eq!(code, -32602, "{msg}");
    let (code, msg) = c
        .call("call.stanza", json!({"xml": "<call/>"}))
        .unwrap_err();
    assert!(code == -32602 && msg.contains("self"), "{msg}");
    // An offer without keying material is bad keying, and creates nothing.
    let (code, msg) = c
        .call(
            "call.stanza",
            json!({"xml": format!(r#"<call from="{CALLEE_PHONE}" to="{CALLER}"><offer call-id="x"/></call>"#), "self": CALLER}),
        )
        .unwrap_err();
    assert_eq!(code, -32602, "{msg}");
    assert_eq!(c.ok("daemon.status", json!({}))["calls"], 0);
    assert_eq!(c.ok("daemon.status", json!({}))["version"], "0.1.0");
}
}

in_both_layouts! {
fn the_same_stanza_as_xml_and_as_a_json_node_gives_the_same_result(layout: Layout) {
    let key = B64.encode([2u8; 32]);
    let mut side = Side::new(layout, CALLEE_PHONE, json!({"call_key": key}));
    side.ok(&offer(SocketAddr::from(([127, 0, 0, 1], 20999))));
    let xml = format!(
        r#"<call from="{CALLEE_PHONE}" to="{CALLER}" id="M1"><mute call-id="{CALL}" media="audio" value="true" x-extra="1"/></call>"#
    );
    let node = json!({"tag": "call", "attrs": {"from": CALLEE_PHONE, "to": CALLER, "id": "M1"}, "content": [
        {"tag": "mute", "attrs": {"call-id": CALL, "media": "audio", "value": "true", "x-extra": "1"}}]});
    let by_xml = side
        .client
        .ok("call.stanza", json!({"xml": xml, "self": CALLEE_PHONE}));
    let by_node = side
        .client
        .ok("call.stanza", json!({"node": node, "self": CALLEE_PHONE}));
    assert_eq!(by_xml, by_node);
    assert_eq!(by_xml["skipped"], 1, "the unknown attribute is counted");
    assert_eq!(
        side.client.ok("call.stats", json!({"call_id": CALL}))["audio"]["muted"],
        true
    );
}
}

in_both_layouts! {
fn a_daemon_bound_to_any_address_reports_one_a_peer_can_use(layout: Layout) {
    // The built-in binds: 0.0.0.0 and ::. Media still stays on loopback here.
    let daemon = TestDaemon::start_with(layout, "bind_v4 = \"0.0.0.0\"\nbind_v6 = \"::\"");
    let mut client = daemon.client();
    client.ok("events.subscribe", json!({}));
    let relay: SocketAddr = "127.0.0.1:20993".parse().unwrap();
    let ringing = client.ok(
        "call.stanza",
        json!({"xml": offer(relay), "self": CALLEE_PHONE, "call_key": B64.encode([6u8; 32])}),
    );
    let local = addr(&ringing["local"]);
    assert_eq!(local.ip().to_string(), "127.0.0.1", "towards the loopback relay: {ringing}");
    assert_ne!(local.port(), 0);
    let started = client
        .take_read_events()
        .into_iter()
        .find(|e| e["event"] == "call.started")
        .expect("call.started");
    assert_eq!(addr(&started["local"]), local, "the event says the same");
    // call.start too, in the family of its candidates.
    for (id, ip) in [("ANY-4", "127.0.0.1"), ("ANY-6", "::1")] {
        let r = client.ok(
            "call.start",
            json!({
                "call_id": id, "candidates": [{"ip": ip, "port": 20992}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                           "tx": B64.encode([1u8; 30]), "rx": B64.encode([2u8; 30])},
                "audio": {"payload_type": 111, "clock_rate": 48000},
            }),
        );
        let local = addr(&r["local"]);
        assert_eq!(local.ip().to_string(), ip, "{r}");
    }
}
}
