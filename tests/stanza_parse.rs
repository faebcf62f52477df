//! `<call>` stanzas of both dialects parse to the expected typed values; bad stanzas get an
//! error naming the problem; nothing panics.

use std::net::SocketAddr;

use proptest::prelude::*;
use srtpd::call::MediaKind;
use srtpd::stanza::{
    AudioCodec, CallAction, CallStanza, MediaOffer, StanzaCandidate, StanzaError, VideoState,
    parse_json, parse_xml,
};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/stanzas/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn spec_accept() {
    let s = parse_xml(&fixture("spec_accept.xml")).unwrap();
    assert_eq!(
        s,
        CallStanza {
            from: Some("B.0:7@s.whatsapp.net".into()),
            to: Some("A@s.whatsapp.net".into()),
            id: Some("2B3C4D5E6F".into()),
            call_id: "CALLID-0001-synthetic".into(),
            call_creator: Some("A@s.whatsapp.net".into()),
            action: CallAction::Accept(MediaOffer {
                candidates: vec![StanzaCandidate {
                    addr: addr("203.0.113.20:3478"),
                    priority: 0,
                    relay: false
                }],
                audio: vec![],
                video: false,
                has_enc: true,
            }),
            ignored: 0,
        }
    );
}

#[test]
fn spec_mute() {
    let s = parse_xml(&fixture("spec_mute.xml")).unwrap();
    assert_eq!(
        (s.from.as_deref(), s.id.as_deref()),
        (Some("A.1@s.whatsapp.net"), Some("MU-0001"))
    );
    assert_eq!(s.call_id, "9f86d081");
    assert_eq!(s.call_creator.as_deref(), Some("A@s.whatsapp.net"));
    assert_eq!(
        s.action,
        CallAction::Mute {
            media: MediaKind::Audio,
            muted: true
        }
    );
    assert_eq!(s.ignored, 0);
}

#[test]
fn spec_video() {
    let s = parse_xml(&fixture("spec_video.xml")).unwrap();
    assert_eq!(s.call_id, "9f86d081");
    assert_eq!(s.call_creator, None);
    assert_eq!(s.action, CallAction::Video(VideoState::On));
    assert_eq!(VideoState::On.sending(), Some(true));
}

#[test]
fn wire_accept_with_te_content() {
    let s = parse_xml(&fixture("wire_accept_te.xml")).unwrap();
    let CallAction::Accept(media) = &s.action else {
        panic!("{s:?}")
    };
    assert_eq!(
        media.candidates,
        vec![
            StanzaCandidate {
                addr: addr("203.0.113.20:3478"),
                priority: 2,
                relay: false
            },
            StanzaCandidate {
                addr: addr("[2001:db8::1]:3478"),
                priority: 1,
                relay: false
            },
        ]
    );
    assert_eq!(
        media.audio,
        vec![AudioCodec {
            enc: "opus".into(),
            rate: Some(16000)
        }]
    );
    // <call t>, <accept count>, <net>: skipped and counted.
    assert_eq!(s.ignored, 3);
}

#[test]
fn wire_offer_with_relays_as_xml_and_as_json_node() {
    let from_xml = parse_xml(&fixture("wire_offer_relay.xml")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&fixture("wire_offer_relay.json")).unwrap();
    let from_json = parse_json(&json).unwrap();
    assert_eq!(from_xml, from_json);
    let CallAction::Offer(media) = &from_xml.action else {
        panic!("{from_xml:?}")
    };
    assert_eq!(
        media.candidates,
        vec![
            StanzaCandidate {
                addr: addr("203.0.113.30:3480"),
                priority: 5,
                relay: true
            },
            StanzaCandidate {
                addr: addr("203.0.113.31:3480"),
                priority: 4,
                relay: true
            },
        ]
    );
    assert_eq!(media.audio.len(), 2);
    assert!(media.video && media.has_enc);
    // <relay uuid>, <token>, <capability>.
    assert_eq!(from_xml.ignored, 3);
}

#[test]
fn wire_mute_v2_video_states_and_terminate() {
    let s = parse_xml(&fixture("wire_mute_v2.xml")).unwrap();
    assert_eq!(
        s.action,
        CallAction::Mute {
            media: MediaKind::Audio,
            muted: true
        }
    );
    let s = parse_xml(&fixture("wire_video_paused.xml")).unwrap();
    assert_eq!(s.action, CallAction::Video(VideoState::Paused));
    assert_eq!(s.ignored, 1, "device_orientation");
    let s = parse_xml(&fixture("wire_terminate_elsewhere.xml")).unwrap();
    assert_eq!(
        s.action,
        CallAction::Terminate {
            reason: Some("accepted_elsewhere".into())
        }
    );
    assert!(s.accepted_elsewhere());

    let states = [
        ("0", VideoState::Disabled, Some(false)),
        ("1", VideoState::Enabled, Some(true)),
        ("2", VideoState::Paused, Some(false)),
        ("3", VideoState::UpgradeRequest, None),
        ("4", VideoState::UpgradeAccept, Some(true)),
        ("5", VideoState::UpgradeReject, None),
        ("6", VideoState::Stopped, Some(false)),
        ("11", VideoState::UpgradeRequestV2, None),
        ("off", VideoState::Off, Some(false)),
        ("9", VideoState::Unknown(9), None),
    ];
    for (value, state, sending) in states {
        let s = parse_xml(&format!(
            r#"<call><video call-id="c" state="{value}"/></call>"#
        ))
        .unwrap();
        assert_eq!(s.action, CallAction::Video(state), "{value}");
        assert_eq!(state.sending(), sending, "{value}");
    }
    let draft_elsewhere =
        parse_xml(r#"<call><terminate call-id="c" reason="accept_elsewhere"/></call>"#).unwrap();
    assert!(draft_elsewhere.accepted_elsewhere());
    let reject = parse_xml(r#"<call><reject call-id="c"/></call>"#).unwrap();
    assert_eq!(reject.action, CallAction::Reject { reason: None });
}

#[test]
fn bad_stanzas_name_the_problem() {
    let err = |xml: &str| parse_xml(xml).unwrap_err();
    assert!(matches!(err("<call><accept"), StanzaError::NotXml(_)));
    assert_eq!(
        err(r#"<message id="1"/>"#),
        StanzaError::NotCall("message".into())
    );
    assert_eq!(err("<call><ping/></call>"), StanzaError::NoAction);
    assert_eq!(
        err(r#"<call><accept call-creator="A"/></call>"#).to_string(),
        "<accept> lacks the call-id attribute"
    );
    assert_eq!(
        err(r#"<call><accept call-id="c"><destination><te>0102030405</te></destination></accept></call>"#).to_string(),
        "<te> content is 5 bytes; expected 6 (IPv4 + port) or 18 (IPv6 + port)"
    );
    assert_eq!(
        err(
            r#"<call><accept call-id="c"><destination><te ip="1.2.3.4"/></destination></accept></call>"#
        ),
        StanzaError::MissingAttribute {
            element: "te".into(),
            attribute: "port"
        }
    );
    assert!(err(r#"<call><accept call-id="c"><destination><te ip="1.2.3" port="5"/></destination></accept></call>"#)
        .to_string()
        .contains("<te> ip"));
    assert!(
        err(r#"<call><mute call-id="c" value="maybe"/></call>"#)
            .to_string()
            .contains("value")
    );
    assert!(
        err(r#"<call><mute_v2 call-id="c" mute-state="2"/></call>"#)
            .to_string()
            .contains("mute-state")
    );
    assert!(
        err(r#"<call><video call-id="c" state="sideways"/></call>"#)
            .to_string()
            .contains("state")
    );
    assert!(
        err(r#"<call><mute call-id=" " value="true"/></call>"#)
            .to_string()
            .contains("call-id")
    );
    assert!(matches!(
        err(&format!("<call>{}</call>", "x".repeat(70_000))),
        StanzaError::TooLarge(_)
    ));
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    assert_eq!(err(&deep), StanzaError::TooDeep);
    // External entities are refused by the parser, not fetched.
    assert!(matches!(
        err(r#"<!DOCTYPE call [<!ENTITY x SYSTEM "file:///etc/passwd">]><call>&x;</call>"#),
        StanzaError::NotXml(_)
    ));

    let bad_json = |v: serde_json::Value| parse_json(&v).unwrap_err().to_string();
    assert!(bad_json(serde_json::json!({"attrs": {}})).contains("node: tag must be a string"));
    assert!(
        bad_json(serde_json::json!({"tag": "call", "content": [{"tag": 5}]}))
            .contains("node.content[0]: tag")
    );
    assert!(bad_json(serde_json::json!({"tag": "call", "content": "%%"})).contains("base64"));
    // The 64 KiB cap holds for the JSON form too: 700 KB of attribute text.
    let big = serde_json::json!({"tag": "call", "attrs": {"from": "x".repeat(700_000)},
        "content": [{"tag": "terminate", "attrs": {"call-id": "c"}}]});
    assert!(matches!(
        parse_json(&big).unwrap_err(),
        StanzaError::TooLarge(n) if n > 700_000
    ));
    let long_id = format!(r#"<call><terminate call-id="{}"/></call>"#, "c".repeat(129));
    assert!(err(&long_id).to_string().contains("call-id"));
}

fn xmlish() -> impl Strategy<Value = String> {
    let tag = prop::sample::select(vec![
        "call",
        "accept",
        "offer",
        "mute",
        "mute_v2",
        "video",
        "terminate",
        "reject",
        "destination",
        "te",
        "te2",
        "relay",
        "audio",
        "enc",
        "x",
    ]);
    let attr = prop::sample::select(vec![
        "call-id",
        "call-creator",
        "ip",
        "port",
        "priority",
        "state",
        "value",
        "media",
        "mute-state",
        "reason",
        "rate",
        "from",
    ]);
    let value = prop::sample::select(vec![
        "c",
        "1",
        "0",
        "true",
        "on",
        "audio",
        "127.0.0.1",
        "70000",
        "",
        "ffff",
        "AQID",
    ]);
    let leaf = (
        tag.clone(),
        prop::collection::vec((attr, value), 0..4),
        prop::option::of("[0-9a-fA-F+/=]{0,40}"),
    )
        .prop_map(|(t, attrs, text)| {
            let a: String = attrs.iter().map(|(k, v)| format!(" {k}=\"{v}\"")).collect();
            format!("<{t}{a}>{}</{t}>", text.unwrap_or_default())
        });
    leaf.prop_recursive(4, 40, 6, move |inner| {
        (tag.clone(), prop::collection::vec(inner, 0..6))
            .prop_map(|(t, kids)| format!("<{t} call-id=\"c\">{}</{t}>", kids.concat()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_stanzas_are_errors_or_values_never_panics(body in xmlish()) {
        let _ = parse_xml(&format!("<call from=\"a\">{body}</call>"));
        let _ = parse_xml(&body);
    }

    #[test]
    fn mutated_fixtures_never_panic(cut in 0usize..400, byte in any::<u8>(), at in 0usize..400) {
        for name in ["spec_accept.xml", "wire_accept_te.xml", "wire_offer_relay.xml", "wire_mute_v2.xml"] {
            let mut bytes = fixture(name).into_bytes();
            if at < bytes.len() {
                bytes[at] = byte;
            }
            bytes.truncate(cut.max(1).min(bytes.len()));
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = parse_xml(&text);
            }
        }
    }

    #[test]
    fn arbitrary_json_nodes_never_panic(v in arbitrary_json()) {
        let _ = parse_json(&v);
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z0-9+/=_-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            (
                prop::sample::select(vec!["call", "accept", "te", "mute_v2"]),
                prop::collection::btree_map("[a-z-]{1,9}", inner.clone(), 0..4),
                prop::collection::vec(inner, 0..4)
            )
                .prop_map(
                    |(tag, attrs, content)| json!({"tag": tag, "attrs": attrs, "content": content})
                ),
        ]
    })
}
