//! Known-answer tests from the RFCs: RFC 3711 B.2 and B.3, RFC 6188 section 7, RFC 7714
//! sections 16 and 17, plus libsrtp's reference packet.

mod common;

use common::{unhex, with_room};
use srtpd::rtp::Ssrc;
use srtpd::srtp::{
    KeyUse, MasterKey, PacketIndex, SessionKeys, SrtcpContext, SrtpContext, SrtpOptions,
    SrtpProfile,
};

fn options() -> SrtpOptions {
    SrtpOptions::default()
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let keys = SessionKeys::from_raw(
        SrtpProfile::AesCm128HmacSha1_80,
        &unhex("2B7E151628AED2A6ABF7158809CF4F3C"),
        &unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
        Some(&[0; 20]),
    )
    .unwrap();
    let mut ctx = SrtpContext::from_session_keys(&keys, &options()).unwrap();
    // SSRC 0, sequence 0, ROC 0: the IV is the salt shifted, so the encrypted zero payload is
    // the keystream itself, up to counter 0xff01.
    let blocks = 0xff02;
    let mut buf = vec![0u8; 12 + 16 * blocks + 10];
    buf[0] = 0x80;
    let len = buf.len() - 10;
    ctx.protect(&mut buf, len).unwrap();
    let keystream = &buf[12..12 + 16 * blocks];
    let block = |i: usize| hex::encode_upper(&keystream[16 * i..16 * (i + 1)]);
    assert_eq!(block(0), "E03EAD0935C95E80E166B16DD92B4EB4");
    assert_eq!(block(1), "D23513162B02D0F72A43A2FE4A5F97AB");
    assert_eq!(block(2), "41E95B3BB0A2E8DD477901E4FCA894C0");
    assert_eq!(block(0xfeff), "EC8CDF7398607CB0F2D21675EA9EA1E4");
    assert_eq!(block(0xff00), "362B7C3C6773516318A077D7FC5073AE");
    assert_eq!(block(0xff01), "6A2CC3787889374FBEB4C81B17BA6C44");
}

#[test]
fn rfc3711_b3_key_derivation() {
    let master = MasterKey::new(
        SrtpProfile::AesCm128HmacSha1_80,
        &unhex("E1F97A0D3E018BE0D64FA32C06DE4139"),
        &unhex("0EC675AD498AFEEBB6960B3AABE6"),
    )
    .unwrap();
    let keys = SessionKeys::derive(SrtpProfile::AesCm128HmacSha1_80, &master, KeyUse::Rtp).unwrap();
    assert_eq!(keys.cipher_key(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(keys.salt(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(
        keys.auth_key(),
        unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn rfc6188_aes256_key_derivation() {
    let master = MasterKey::new(
        SrtpProfile::AesCm256HmacSha1_80,
        &unhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
        &unhex("3b04803de51ee7c96423ab5b78d2"),
    )
    .unwrap();
    let keys = SessionKeys::derive(SrtpProfile::AesCm256HmacSha1_80, &master, KeyUse::Rtp).unwrap();
    assert_eq!(
        keys.cipher_key(),
        unhex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
    );
    assert_eq!(keys.salt(), unhex("fa31791685ca444a9e07c6c64e93"));
    assert_eq!(
        keys.auth_key(),
        unhex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
    );
}

/// libsrtp's test driver packet (SSRC 0xCAFEBABE, sequence 0x1234, 16 bytes of 0xAB) under the
/// RFC 3711 B.3 and RFC 6188 master keys: the whole protect path, KDF to tag.
#[test]
fn libsrtp_reference_packets() {
    let plain = unhex("800f1234decafbadcafebabe abababababababababababababababab");
    let cases = [
        (
            SrtpProfile::AesCm128HmacSha1_80,
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
            "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
        ),
        (
            SrtpProfile::AesCm256HmacSha1_80,
            "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
            "3b04803de51ee7c96423ab5b78d2",
            "800f1234decafbadcafebabef1d9de17ff251ff1aa007774b0b4b40da08d9d9a5b3a55d8873b",
        ),
    ];
    for (profile, key, salt, expected) in cases {
        let master = MasterKey::new(profile, &unhex(key), &unhex(salt)).unwrap();
        let mut tx = SrtpContext::new(profile, &master, &options()).unwrap();
        let mut buf = with_room(&plain, tx.overhead());
        let n = tx.protect(&mut buf, plain.len()).unwrap();
        assert_eq!(hex::encode(&buf[..n]), expected, "{profile}");

        let mut rx = SrtpContext::new(profile, &master, &options()).unwrap();
        let n = rx.unprotect(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..n], &plain[..], "{profile}");
    }
}

const GCM_SALT: &str = "517569642070726f2071756f";
const GCM_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const GCM_KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const GCM_RTP: &str = "8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";
const GCM_RTCP: &str = "81c8000d4d617273 4e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

fn gcm_keys(profile: SrtpProfile) -> SessionKeys {
    let key = if profile == SrtpProfile::AeadAes128Gcm {
        GCM_KEY_128
    } else {
        GCM_KEY_256
    };
    SessionKeys::from_raw(profile, &unhex(key), &unhex(GCM_SALT), None).unwrap()
}

/// RFC 7714 sections 16.1.1 and 16.2.1 (encryption) and 16.1.2, 16.2.2 (decryption).
#[test]
fn rfc7714_rtp() {
    let cases = [
        (
            SrtpProfile::AeadAes128Gcm,
            "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce",
        ),
        (
            SrtpProfile::AeadAes256Gcm,
            "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13",
        ),
    ];
    for (profile, expected) in cases {
        let plain = unhex(GCM_RTP);
        let mut tx = SrtpContext::from_session_keys(&gcm_keys(profile), &options()).unwrap();
        let mut buf = with_room(&plain, tx.overhead());
        let n = tx.protect(&mut buf, plain.len()).unwrap();
        assert_eq!(hex::encode(&buf[..n]), expected, "{profile}");

        let mut rx = SrtpContext::from_session_keys(&gcm_keys(profile), &options()).unwrap();
        let mut wire = unhex(expected);
        let n = rx.unprotect(&mut wire).unwrap();
        assert_eq!(&wire[..n], &plain[..], "{profile}");
        assert_eq!(
            rx.recv_index(Ssrc(0x5501a0b2)),
            Some(PacketIndex::new(0, 0xf17b))
        );
    }
}

/// RFC 7714 sections 17.1 and 17.2: SRTCP with SRTCP index 0x5d4, encrypted.
#[test]
fn rfc7714_rtcp() {
    let cases = [
        (
            SrtpProfile::AeadAes128Gcm,
            "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4",
        ),
        (
            SrtpProfile::AeadAes256Gcm,
            "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4",
        ),
    ];
    for (profile, expected) in cases {
        let plain = unhex(GCM_RTCP);
        let mut tx = SrtcpContext::from_session_keys(&gcm_keys(profile), &options()).unwrap();
        tx.set_send_index(Ssrc(0x4d617273), 0x5d4).unwrap();
        let mut buf = with_room(&plain, tx.overhead());
        let n = tx.protect(&mut buf, plain.len()).unwrap();
        assert_eq!(hex::encode(&buf[..n]), expected, "{profile}");
        assert_eq!(tx.next_send_index(Ssrc(0x4d617273)), 0x5d5);

        let mut rx = SrtcpContext::from_session_keys(&gcm_keys(profile), &options()).unwrap();
        let mut wire = unhex(expected);
        let n = rx.unprotect(&mut wire).unwrap();
        assert_eq!(&wire[..n], &plain[..], "{profile}");
    }
}
