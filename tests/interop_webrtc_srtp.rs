//! Interop with webrtc-srtp, an SRTP implementation srtpd's authors did not write: for every
//! profile both support, srtpd's output decrypts there and its output decrypts here, and the
//! protected bytes are identical for the same keys and packets.

mod common;

use common::{rtcp_sender_report, rtp_packet, rtp_packet_with_csrcs_and_extension, with_room};
use srtpd::keying::wa_e2e::CallKey;
use srtpd::rtp::Ssrc;
use srtpd::srtp::{MasterKey, SrtcpContext, SrtpContext, SrtpOptions, SrtpProfile};
use webrtc_srtp::context::Context as WebrtcContext;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

fn webrtc_profile(p: SrtpProfile) -> ProtectionProfile {
    match p {
        SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AesCm256HmacSha1_80 => ProtectionProfile::Aes256CmHmacSha1_80,
        SrtpProfile::AesCm256HmacSha1_32 => ProtectionProfile::Aes256CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

fn master(profile: SrtpProfile, seed: u8) -> MasterKey {
    let key: Vec<u8> = (0..profile.key_len() as u8)
        .map(|i| i.wrapping_mul(31) ^ seed)
        .collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8)
        .map(|i| i.wrapping_mul(17) ^ seed ^ 0x5a)
        .collect();
    MasterKey::new(profile, &key, &salt).unwrap()
}

fn webrtc(profile: SrtpProfile, key: &MasterKey) -> WebrtcContext {
    WebrtcContext::new(
        key.key(),
        key.salt(),
        webrtc_profile(profile),
        Some(srtp_replay_protection(1024)),
        Some(srtcp_replay_protection(1024)),
    )
    .unwrap()
}

fn srtpd(profile: SrtpProfile, key: &MasterKey) -> SrtpContext {
    SrtpContext::new(profile, key, &SrtpOptions::default()).unwrap()
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 7 + j * 13) as u8).collect()
}

/// Sequence numbers from `start`, `count` of them, wrapping at 65535.
fn seqs(start: u16, count: usize) -> impl Iterator<Item = (usize, u16)> {
    (0..count).map(move |i| (i, start.wrapping_add(i as u16)))
}

/// A deterministic shuffle that moves packets at most `depth` places: reordering inside the
/// replay window.
fn reorder<T>(items: &mut [T], depth: usize) {
    let mut x: u32 = 0x9e37_79b9;
    for chunk in items.chunks_mut(depth) {
        for i in (1..chunk.len()).rev() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            chunk.swap(i, x as usize % (i + 1));
        }
    }
}

/// Plain packets of a stream that crosses sequence number 65535, in a variety of shapes.
fn stream(ssrc: u32) -> Vec<Vec<u8>> {
    seqs(65_000, 1_200)
        .map(|(i, seq)| match i % 3 {
            0 => rtp_packet(111, seq, (i * 960) as u32, ssrc, &payload(i, 160)),
            1 => rtp_packet_with_csrcs_and_extension(seq, ssrc, &payload(i, 1 + i % 300)),
            _ => rtp_packet(96, seq, (i * 3000) as u32, ssrc, &payload(i, 1200)),
        })
        .collect()
}

#[test]
fn srtpd_protects_identically_and_webrtc_srtp_decrypts() {
    for profile in SrtpProfile::ALL {
        let key = master(profile, 1);
        let mut ours = srtpd(profile, &key);
        let mut theirs_tx = webrtc(profile, &key);
        let mut theirs_rx = webrtc(profile, &key);
        for plain in stream(0x1020_3040) {
            let mut buf = with_room(&plain, ours.overhead());
            let n = ours.protect(&mut buf, plain.len()).unwrap();
            let reference = theirs_tx.encrypt_rtp(&plain).unwrap();
            assert_eq!(&buf[..n], &reference[..], "{profile}: ciphertext differs");
            let decrypted = theirs_rx.decrypt_rtp(&buf[..n]).unwrap();
            assert_eq!(&decrypted[..], &plain[..], "{profile}");
        }
        assert_eq!(
            ours.send_index(Ssrc(0x1020_3040)).map(|i| i.roc()),
            Some(1),
            "{profile}"
        );
    }
}

#[test]
fn detached_tags_match_webrtc_srtp_byte_for_byte() {
    for profile in SrtpProfile::ALL {
        let key = master(profile, 4);
        let mut ours = srtpd(profile, &key);
        let mut theirs = webrtc(profile, &key);
        for plain in stream(0x0d07_ac4e) {
            let mut packet = plain.clone();
            let mut tag = [0u8; 16];
            ours.protect_detached(&mut packet, &mut tag).unwrap();
            packet.extend_from_slice(&tag[..ours.overhead()]);
            let reference = theirs.encrypt_rtp(&plain).unwrap();
            assert_eq!(
                &packet[..],
                &reference[..],
                "{profile}: detached output differs"
            );
        }
        let original = stream(1).remove(0);
        let mut packet = original.clone();
        let mut short = [0u8; 3];
        assert!(matches!(
            ours.protect_detached(&mut packet, &mut short),
            Err(srtpd::srtp::SrtpError::BufferTooSmall { needed, .. }) if needed == ours.overhead()
        ));
        assert_eq!(packet, original, "a refused packet is left as it was");
    }
}

#[test]
fn webrtc_srtp_protects_and_srtpd_decrypts() {
    for profile in SrtpProfile::ALL {
        let key = master(profile, 2);
        let mut theirs = webrtc(profile, &key);
        let mut ours = srtpd(profile, &key);
        for plain in stream(0x0bad_cafe) {
            let mut wire = theirs.encrypt_rtp(&plain).unwrap().to_vec();
            let n = ours.unprotect(&mut wire).unwrap();
            assert_eq!(&wire[..n], &plain[..], "{profile}");
        }
        assert_eq!(
            ours.recv_index(Ssrc(0x0bad_cafe)).map(|i| i.roc()),
            Some(1),
            "{profile}"
        );
    }
}

#[test]
fn reordered_within_the_window_across_the_wrap() {
    for profile in SrtpProfile::ALL {
        let key = master(profile, 3);
        let mut theirs = webrtc(profile, &key);
        let mut wires: Vec<(Vec<u8>, Vec<u8>)> = stream(0x5555_aaaa)
            .into_iter()
            .map(|plain| (theirs.encrypt_rtp(&plain).unwrap().to_vec(), plain))
            .collect();
        reorder(&mut wires, 40);
        let mut ours = srtpd(profile, &key);
        for (mut wire, plain) in wires {
            let n = ours
                .unprotect(&mut wire)
                .unwrap_or_else(|e| panic!("{profile}: {e}"));
            assert_eq!(&wire[..n], &plain[..], "{profile}");
        }

        // And the other way: srtpd sends in order, the network reorders, webrtc-srtp receives.
        let mut ours = srtpd(profile, &key);
        let mut wires: Vec<(Vec<u8>, Vec<u8>)> = seqs(1_000, 500)
            .map(|(i, seq)| {
                let plain = rtp_packet(111, seq, i as u32 * 960, 77, &payload(i, 100));
                let mut buf = with_room(&plain, ours.overhead());
                let n = ours.protect(&mut buf, plain.len()).unwrap();
                buf.truncate(n);
                (buf, plain)
            })
            .collect();
        reorder(&mut wires, 20);
        let mut theirs = webrtc(profile, &key);
        for (wire, plain) in wires {
            assert_eq!(
                &theirs.decrypt_rtp(&wire).unwrap()[..],
                &plain[..],
                "{profile}"
            );
        }
    }
}

#[test]
fn srtcp_both_ways_byte_identical() {
    for profile in SrtpProfile::ALL {
        let key = master(profile, 4);
        let ssrc = 0x4d61_7273;
        let mut ours_tx = SrtcpContext::new(profile, &key, &SrtpOptions::default()).unwrap();
        // webrtc-srtp numbers SRTCP from 1; start there to compare bytes.
        ours_tx.set_send_index(Ssrc(ssrc), 1).unwrap();
        let mut theirs_tx = webrtc(profile, &key);
        let mut theirs_rx = webrtc(profile, &key);
        let mut ours_rx = SrtcpContext::new(profile, &key, &SrtpOptions::default()).unwrap();
        for n in 0..200 {
            let plain = rtcp_sender_report(ssrc, n);
            let mut buf = with_room(&plain, ours_tx.overhead());
            let len = ours_tx.protect(&mut buf, plain.len()).unwrap();
            let reference = theirs_tx.encrypt_rtcp(&plain).unwrap();
            assert_eq!(&buf[..len], &reference[..], "{profile}: SRTCP differs");
            assert_eq!(
                &theirs_rx.decrypt_rtcp(&buf[..len]).unwrap()[..],
                &plain[..],
                "{profile}"
            );

            let mut wire = reference.to_vec();
            let len = ours_rx.unprotect(&mut wire).unwrap();
            assert_eq!(&wire[..len], &plain[..], "{profile}");
        }
    }
}

#[test]
fn wa_e2e_keys_interoperate_as_aes_cm_128_hmac_sha1_32() {
    let call_key = CallKey::from_bytes(&[7; 32]).unwrap();
    let alice = call_key.call_keys("1:0@lid", "2:0@lid", None).unwrap();
    let bob = call_key.call_keys("2:0@lid", "1:0@lid", None).unwrap();
    let options = alice.options(&SrtpOptions::default());
    let mut alice_tx = SrtpContext::new(alice.profile, &alice.tx, &options).unwrap();
    let mut bob_rx_reference = webrtc(bob.profile, &bob.rx);
    for (i, seq) in seqs(65_500, 100) {
        let plain = rtp_packet(120, seq, i as u32 * 960, 0x1234_5678, &payload(i, 60));
        let mut buf = with_room(&plain, alice_tx.overhead());
        let n = alice_tx.protect(&mut buf, plain.len()).unwrap();
        assert_eq!(n, plain.len() + 4);
        assert_eq!(
            &bob_rx_reference.decrypt_rtp(&buf[..n]).unwrap()[..],
            &plain[..]
        );
    }
}
