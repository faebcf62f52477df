//! SRTCP packets sent with the E flag clear (authenticated, not encrypted) are accepted, for
//! both transforms. srtpd never sends them, so the test builds them itself from the RFC
//! layouts: RFC 3711 section 3.4 (HMAC over packet ‖ E‖index) and RFC 7714 section 9.2
//! (GCM with packet ‖ E‖index as associated data, layout packet ‖ tag ‖ E‖index).

mod common;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, KeyInit as _};
use common::rtcp_sender_report;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use srtpd::srtp::{
    KeyUse, MasterKey, SessionKeys, SrtcpContext, SrtpError, SrtpOptions, SrtpProfile,
};

#[test]
fn hmac_profile_accepts_e0_and_leaves_the_payload_alone() {
    let profile = SrtpProfile::AesCm128HmacSha1_80;
    let master = MasterKey::new(profile, &[3; 16], &[4; 14]).unwrap();
    let keys = SessionKeys::derive(profile, &master, KeyUse::Rtcp).unwrap();
    let plain = rtcp_sender_report(0x11, 5);
    let mut wire = plain.clone();
    wire.extend_from_slice(&7u32.to_be_bytes()); // E = 0, index 7
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(keys.auth_key()).unwrap();
    mac.update(&wire);
    wire.extend_from_slice(&mac.finalize().into_bytes()[..10]);

    let mut rx = SrtcpContext::new(profile, &master, &SrtpOptions::default()).unwrap();
    let mut forged = wire.clone();
    forged[20] ^= 1;
    assert_eq!(
        rx.unprotect(&mut forged),
        Err(SrtpError::AuthenticationFailed)
    );
    let n = rx.unprotect(&mut wire).unwrap();
    assert_eq!(&wire[..n], &plain[..]);
}

#[test]
fn gcm_profile_accepts_e0_and_restores_a_forgery() {
    let profile = SrtpProfile::AeadAes128Gcm;
    let master = MasterKey::new(profile, &[5; 16], &[6; 12]).unwrap();
    let keys = SessionKeys::derive(profile, &master, KeyUse::Rtcp).unwrap();
    let plain = rtcp_sender_report(0x22, 9);
    let index = 3u32;
    // Nonce: (0x0000 ‖ SSRC ‖ 0x0000 ‖ index) ⊕ salt.
    let mut nonce = [0u8; 12];
    nonce[2..6].copy_from_slice(&0x22u32.to_be_bytes());
    nonce[8..12].copy_from_slice(&index.to_be_bytes());
    for (n, s) in nonce.iter_mut().zip(keys.salt()) {
        *n ^= s;
    }
    let mut aad = plain.clone();
    aad.extend_from_slice(&index.to_be_bytes());
    let gcm = Aes128Gcm::new_from_slice(keys.cipher_key()).unwrap();
    let tag = gcm
        .encrypt_inout_detached(&nonce.into(), &aad, (&mut [][..]).into())
        .unwrap();
    let mut wire = plain.clone();
    wire.extend_from_slice(&tag);
    wire.extend_from_slice(&index.to_be_bytes());

    let mut rx = SrtcpContext::new(profile, &master, &SrtpOptions::default()).unwrap();
    let mut forged = wire.clone();
    forged[9] ^= 1;
    let before = forged.clone();
    assert_eq!(
        rx.unprotect(&mut forged),
        Err(SrtpError::AuthenticationFailed)
    );
    assert_eq!(forged, before, "a refused packet was modified");
    let n = rx.unprotect(&mut wire).unwrap();
    assert_eq!(&wire[..n], &plain[..]);
}
