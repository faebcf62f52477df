//! The wa-e2e known-answer vectors (numbers copied from the project's shared vector file,
//! which re-derives the public vectors of two reverse-engineered implementations).

mod common;

use common::{unhex, with_room};
use srtpd::keying::KeyingError;
use srtpd::keying::wa_e2e::{self, CallKey, SsrcSlot, derive_ssrc, normalize_device_id};
use srtpd::rtp::Ssrc;
use srtpd::srtp::{KeyUse, SessionKeys, SrtpContext, SrtpOptions};

const CALL_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const SELF_LID: &str = "111111111111111:0@lid";
const PEER_LID: &str = "222222222222222:0@lid";
const CALL_ID: &str = "00112233445566778899AABBCCDDEEFF";

fn call_key() -> CallKey {
    CallKey::from_bytes(&unhex(CALL_KEY)).unwrap()
}

#[test]
fn master_key_is_hkdf_of_the_sender_lid() {
    let peer = call_key().master_key(PEER_LID);
    assert_eq!(peer.key(), unhex("3f5423fb6f67e4c588bf5741a3a4e92c"));
    assert_eq!(peer.salt(), unhex("749ee99101a47c82bb5dacec40cf"));
}

#[test]
fn session_keys_of_both_directions() {
    let keys = call_key().call_keys(SELF_LID, PEER_LID, None).unwrap();
    assert_eq!(keys.profile, wa_e2e::PROFILE);
    assert_eq!(keys.rtp_tag_len, Some(4));

    let rx = SessionKeys::derive(keys.profile, &keys.rx, KeyUse::Rtp).unwrap();
    assert_eq!(rx.cipher_key(), unhex("747055a9d18be0fcdc0e29d871309081"));
    assert_eq!(rx.salt(), unhex("10fb8133eff7639cc0d06788f49c"));
    assert_eq!(
        rx.auth_key(),
        unhex("8eff4bb04971d92512b034ce0ebc466059bfc6ea")
    );

    let tx = SessionKeys::derive(keys.profile, &keys.tx, KeyUse::Rtp).unwrap();
    assert_eq!(tx.cipher_key(), unhex("261bde5b556020e3e6da0f5e3132db57"));
    assert_eq!(tx.salt(), unhex("44224a8c019b379c4bbf7dda284a"));
    assert_eq!(
        tx.auth_key(),
        unhex("56b2655b60a1c17c03dfe94950d5df233481ad41")
    );
}

fn peer_context() -> SrtpContext {
    let keys = call_key().call_keys(SELF_LID, PEER_LID, None).unwrap();
    // The peer sends with the keys we receive with.
    SrtpContext::new(
        keys.profile,
        &keys.rx,
        &keys.options(&SrtpOptions::default()),
    )
    .unwrap()
}

#[test]
fn payload_encrypts_under_the_peer_keys() {
    // SSRC 0x12345678, sequence 7, ROC 0: IV 10fb8133fdc335e4c0d06788f49b0000.
    let plain = common::rtp_packet(
        0x78,
        7,
        0x3c0,
        0x1234_5678,
        &unhex("102132435465768798a9bacb"),
    );
    let mut ctx = peer_context();
    assert_eq!(ctx.overhead(), 4);
    let mut buf = with_room(&plain, ctx.overhead());
    let n = ctx.protect(&mut buf, plain.len()).unwrap();
    assert_eq!(n, plain.len() + 4);
    assert_eq!(hex::encode(&buf[12..n - 4]), "17b30591a2650ed7bbae9c5a");
}

#[test]
fn four_byte_tag_round_trips_and_rejects_forgery() {
    let plain = common::rtp_packet(
        0x78,
        7,
        0x3c0,
        0x1234_5678,
        &unhex("102132435465768798a9bacb"),
    );
    let mut buf = with_room(&plain, 4);
    let n = peer_context().protect(&mut buf, plain.len()).unwrap();
    let mut wire = buf[..n].to_vec();
    assert_eq!(peer_context().unprotect(&mut wire), Ok(plain.len()));
    assert_eq!(&wire[..plain.len()], &plain[..]);

    let mut forged = buf[..n].to_vec();
    forged[n - 1] ^= 1;
    assert!(peer_context().unprotect(&mut forged).is_err());
}

#[test]
fn ssrcs_per_slot() {
    assert_eq!(
        derive_ssrc(CALL_ID, PEER_LID, SsrcSlot::Audio),
        Ssrc(1805509457)
    );
    assert_eq!(
        derive_ssrc(CALL_ID, PEER_LID, SsrcSlot::AudioFec),
        Ssrc(2479325408)
    );
    assert_eq!(
        derive_ssrc("CALL-ID-0001", "12345:0@lid", SsrcSlot::Video),
        Ssrc(0xf8d70484)
    );
}

#[test]
fn lid_normalisation() {
    assert_eq!(normalize_device_id("12345@lid"), "12345:0@lid");
    assert_eq!(normalize_device_id("12345:3@lid"), "12345:3@lid");
    assert_eq!(normalize_device_id("12345:3@lid/phone"), "12345:3@lid");
    assert_eq!(normalize_device_id("12345@lid/phone"), "12345:0@lid");
    assert_eq!(
        normalize_device_id("B.0:7@s.whatsapp.net"),
        "B.0:7@s.whatsapp.net"
    );
    // A bare LID derives the same keys as its :0 form.
    assert_eq!(
        call_key().master_key("222222222222222@lid"),
        call_key().master_key(PEER_LID)
    );
}

#[test]
fn call_key_from_the_enc_plaintext() {
    // 52 22 0a 20 <32-byte call key>: Message field 10 (call) → Call field 1 (callKey).
    let mut plaintext = unhex("52220a20");
    plaintext.extend_from_slice(&unhex(CALL_KEY));
    assert_eq!(CallKey::from_enc_plaintext(&plaintext).unwrap(), call_key());

    // Unknown fields around it are skipped.
    let mut with_more = unhex("0a0568656c6c6f");
    with_more.extend_from_slice(&plaintext);
    assert_eq!(CallKey::from_enc_plaintext(&with_more).unwrap(), call_key());

    // Random padding the signaling client did not strip.
    let mut padded = plaintext.clone();
    padded.extend_from_slice(&[5; 5]);
    assert_eq!(CallKey::from_enc_plaintext(&padded).unwrap(), call_key());
}

#[test]
fn bad_call_keys_name_the_problem() {
    assert_eq!(
        CallKey::from_bytes(&[0; 31]).unwrap_err(),
        KeyingError::BadLength {
            field: "call_key",
            expected: 32,
            got: 31
        }
    );
    let err = CallKey::from_enc_plaintext(&unhex("0a0568656c6c6f")).unwrap_err();
    assert!(err.to_string().contains("no call (field 10)"), "{err}");
    let err = CallKey::from_enc_plaintext(&unhex("52021001")).unwrap_err();
    assert!(err.to_string().contains("no callKey (field 1)"), "{err}");
    let err = CallKey::from_enc_plaintext(&unhex("52050a03010203")).unwrap_err();
    assert!(err.to_string().contains("callKey is 3 bytes"), "{err}");
    let err = CallKey::from_enc_plaintext(&[0xff, 0xff]).unwrap_err();
    assert!(err.to_string().contains("not a protobuf Message"), "{err}");
    let err = CallKey::from_base64("AAAA*AAA").unwrap_err();
    assert!(
        matches!(
            err,
            KeyingError::BadBase64 {
                field: "call_key",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        call_key().call_keys("", PEER_LID, None).unwrap_err(),
        KeyingError::MissingDeviceId("self")
    );
}

#[test]
fn debug_output_never_shows_key_bytes() {
    let shown = format!(
        "{:?}",
        call_key().call_keys(SELF_LID, PEER_LID, None).unwrap()
    );
    assert!(shown.contains("redacted"), "{shown}");
    for byte in unhex("3f5423fb6f67e4c5") {
        assert!(!shown.contains(&format!("{byte}, ")), "{shown}");
    }
    assert_eq!(format!("{:?}", call_key()), "CallKey(redacted)");
}
