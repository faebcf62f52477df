//! What srtpd does with packets it must refuse: forged, corrupted, replayed, too old, or too
//! short. Each refusal is a typed error, leaves the context (and the buffer) as it was, and
//! never panics.

mod common;

use common::{rtcp_sender_report, rtp_packet, rtp_packet_with_csrcs_and_extension, with_room};
use proptest::prelude::*;
use srtpd::rtp::{PacketError, Ssrc};
use srtpd::srtp::{
    MasterKey, PacketIndex, SrtcpContext, SrtpContext, SrtpError, SrtpOptions, SrtpProfile,
};

fn key(profile: SrtpProfile) -> MasterKey {
    MasterKey::new(
        profile,
        &vec![0x42; profile.key_len()],
        &vec![0x24; profile.salt_len()],
    )
    .unwrap()
}

fn pair(profile: SrtpProfile, window: usize) -> (SrtpContext, SrtpContext) {
    let options = SrtpOptions {
        replay_window: window,
        ..SrtpOptions::default()
    };
    (
        SrtpContext::new(profile, &key(profile), &options).unwrap(),
        SrtpContext::new(profile, &key(profile), &options).unwrap(),
    )
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = with_room(plain, tx.overhead());
    let n = tx.protect(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_flipped_bit_anywhere_fails_and_changes_nothing() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, 1024);
        let first = protect(&mut tx, &rtp_packet(111, 40_000, 0, 9, &[1; 50]));
        assert!(rx.unprotect(&mut first.clone()).is_ok());
        let before = rx.recv_index(Ssrc(9));

        // Sequence 100 after 40000 is the next rollover period: a forged copy must move
        // neither the rollover counter nor the replay window.
        let plain = rtp_packet_with_csrcs_and_extension(100, 9, &[2; 80]);
        let genuine = protect(&mut tx, &plain);
        let header_len = 12 + 8 + 12;
        let positions = [
            1,
            3,
            9,
            14,
            header_len + 2,
            header_len + 40,
            genuine.len() - 1,
        ];
        for at in positions {
            for bit in [0, 3, 7] {
                let mut forged = genuine.clone();
                forged[at] ^= 1 << bit;
                let snapshot = forged.clone();
                let err = rx.unprotect(&mut forged).unwrap_err();
                assert!(
                    matches!(
                        err,
                        SrtpError::AuthenticationFailed | SrtpError::Malformed(_)
                    ),
                    "{profile}: byte {at} bit {bit}: {err}"
                );
                assert_eq!(forged, snapshot, "{profile}: a refused packet was modified");
                assert_eq!(rx.recv_index(Ssrc(9)), before, "{profile}: state moved");
            }
        }
        // The genuine packet still decrypts after all the forgeries, in the next period.
        let mut wire = genuine.clone();
        let n = rx.unprotect(&mut wire).unwrap();
        assert_eq!(&wire[..n], &plain[..], "{profile}");
        assert_eq!(
            rx.recv_index(Ssrc(9)),
            Some(PacketIndex::new(1, 100)),
            "{profile}"
        );
    }
}

#[test]
fn forged_packets_from_unknown_ssrcs_create_no_state() {
    for profile in SrtpProfile::ALL {
        let (_, mut rx) = pair(profile, 64);
        let wrong_key = MasterKey::new(
            profile,
            &vec![1; profile.key_len()],
            &vec![2; profile.salt_len()],
        )
        .unwrap();
        for ssrc in 0..100 {
            let mut other_tx =
                SrtpContext::new(profile, &wrong_key, &SrtpOptions::default()).unwrap();
            let mut wire = protect(&mut other_tx, &rtp_packet(0, 1, 0, ssrc, &[0; 20]));
            assert_eq!(
                rx.unprotect(&mut wire),
                Err(SrtpError::AuthenticationFailed)
            );
        }
        assert_eq!(rx.recv_ssrcs().count(), 0, "{profile}");
    }
}

#[test]
fn replayed_and_too_old_packets_are_refused() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, 64);
        let wires: Vec<Vec<u8>> = (0..200u16)
            .map(|seq| protect(&mut tx, &rtp_packet(0, seq, 0, 5, &[seq as u8; 30])))
            .collect();
        for seq in [0, 1, 2, 150] {
            rx.unprotect(&mut wires[seq].clone()).unwrap();
        }
        assert_eq!(
            rx.unprotect(&mut wires[150].clone()),
            Err(SrtpError::Replayed {
                ssrc: Ssrc(5),
                index: 150
            })
        );
        // 150 - 64 = 86 is the oldest index the window still holds.
        assert_eq!(
            rx.unprotect(&mut wires[86].clone()),
            Err(SrtpError::TooOld {
                ssrc: Ssrc(5),
                index: 86
            })
        );
        assert!(rx.unprotect(&mut wires[87].clone()).is_ok(), "{profile}");
        assert!(rx.unprotect(&mut wires[149].clone()).is_ok(), "{profile}");
        assert!(matches!(
            rx.unprotect(&mut wires[149].clone()),
            Err(SrtpError::Replayed { .. })
        ));
    }
}

#[test]
fn a_forgery_with_a_used_index_is_an_auth_failure_not_a_replay() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, 64);
        let wire = protect(&mut tx, &rtp_packet(0, 7, 0, 5, &[7; 30]));
        rx.unprotect(&mut wire.clone()).unwrap();
        // The genuine packet again, and then a copy with a flipped payload bit: a replay
        // only if it authenticates.
        let mut replay = wire.clone();
        assert!(
            matches!(rx.unprotect(&mut replay), Err(SrtpError::Replayed { .. })),
            "{profile}"
        );
        assert_eq!(
            replay, wire,
            "{profile}: a refused replay is left as it came"
        );
        let mut forged = wire.clone();
        forged[20] ^= 1;
        assert_eq!(
            rx.unprotect(&mut forged),
            Err(SrtpError::AuthenticationFailed),
            "{profile}"
        );

        let mut tx_c = SrtcpContext::new(profile, &key(profile), &SrtpOptions::default()).unwrap();
        let mut rx_c = SrtcpContext::new(profile, &key(profile), &SrtpOptions::default()).unwrap();
        let report = rtcp_sender_report(5, 1);
        let mut buf = with_room(&report, tx_c.overhead());
        let n = tx_c.protect(&mut buf, report.len()).unwrap();
        buf.truncate(n);
        rx_c.unprotect(&mut buf.clone()).unwrap();
        let mut again = buf.clone();
        assert!(
            matches!(rx_c.unprotect(&mut again), Err(SrtpError::Replayed { .. })),
            "{profile}"
        );
        assert_eq!(
            again, buf,
            "{profile}: a refused SRTCP replay is left as it came"
        );
        let mut forged = buf.clone();
        forged[10] ^= 1;
        assert_eq!(
            rx_c.unprotect(&mut forged),
            Err(SrtpError::AuthenticationFailed),
            "{profile}"
        );
    }
}

#[test]
fn short_packets_and_buffers_are_errors() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile, 64);
        // Every prefix of a valid protected packet.
        let wire = protect(&mut tx, &rtp_packet_with_csrcs_and_extension(1, 3, &[]));
        for len in 0..wire.len() {
            let err = rx.unprotect(&mut wire[..len].to_vec()).unwrap_err();
            assert!(
                matches!(err, SrtpError::TooShort { .. } | SrtpError::Malformed(_)),
                "{profile}: {len} bytes: {err}"
            );
        }
        // Protect without room for the tag, and with a length beyond the buffer.
        let plain = rtp_packet(0, 2, 0, 3, &[0; 10]);
        let mut tight = plain.clone();
        assert_eq!(
            tx.protect(&mut tight, plain.len()),
            Err(SrtpError::BufferTooSmall {
                needed: plain.len() + tx.overhead(),
                capacity: plain.len()
            })
        );
        assert_eq!(tight, plain, "a refused protect wrote to the buffer");
        assert!(matches!(
            tx.protect(&mut tight, 1000),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        // Not RTP at all.
        let mut junk = with_room(&[0x40; 20], 16);
        assert_eq!(
            tx.protect(&mut junk, 20),
            Err(SrtpError::Malformed(PacketError::BadVersion(1)))
        );
    }
}

#[test]
fn srtcp_refuses_forgeries_replays_and_short_packets() {
    for profile in SrtpProfile::ALL {
        let options = SrtpOptions::default();
        let mut tx = SrtcpContext::new(profile, &key(profile), &options).unwrap();
        let mut rx = SrtcpContext::new(profile, &key(profile), &options).unwrap();
        let plain = rtcp_sender_report(77, 1);
        let mut buf = with_room(&plain, tx.overhead());
        let n = tx.protect(&mut buf, plain.len()).unwrap();
        let genuine = buf[..n].to_vec();
        for at in [0, 5, 10, n - 20, n - 5, n - 1] {
            let mut forged = genuine.clone();
            forged[at] ^= 0x10;
            let snapshot = forged.clone();
            assert!(rx.unprotect(&mut forged).is_err(), "{profile}: byte {at}");
            assert_eq!(forged, snapshot, "{profile}: refused packet modified");
        }
        let mut wire = genuine.clone();
        assert_eq!(rx.unprotect(&mut wire), Ok(plain.len()));
        assert_eq!(&wire[..plain.len()], &plain[..]);
        assert_eq!(
            rx.unprotect(&mut genuine.clone()),
            Err(SrtpError::Replayed {
                ssrc: Ssrc(77),
                index: 0
            })
        );
        for len in 0..genuine.len().min(8 + tx.overhead()) {
            assert!(rx.unprotect(&mut genuine[..len].to_vec()).is_err());
        }
    }
}

#[test]
fn sender_index_can_be_set_to_resume_a_stream() {
    let profile = SrtpProfile::AesCm128HmacSha1_80;
    let (mut tx, mut rx) = pair(profile, 1024);
    tx.set_send_index(Ssrc(8), PacketIndex::new(3, 65_534))
        .unwrap();
    rx.set_recv_index(Ssrc(8), PacketIndex::new(3, 65_530))
        .unwrap();
    for seq in [65_534u16, 65_535, 0, 1] {
        let plain = rtp_packet(0, seq, 0, 8, &[9; 16]);
        let mut wire = protect(&mut tx, &plain);
        let n = rx.unprotect(&mut wire).unwrap();
        assert_eq!(&wire[..n], &plain[..]);
    }
    assert_eq!(tx.send_index(Ssrc(8)), Some(PacketIndex::new(4, 1)));
    assert_eq!(rx.recv_index(Ssrc(8)), Some(PacketIndex::new(4, 1)));
}

#[test]
fn exhausted_indices_stop_the_sender() {
    let profile = SrtpProfile::AeadAes128Gcm;
    let (mut tx, _) = pair(profile, 64);
    tx.set_send_index(Ssrc(1), PacketIndex::MAX).unwrap();
    let plain = rtp_packet(0, 0, 0, 1, &[0; 4]);
    let mut buf = with_room(&plain, 16);
    assert_eq!(
        tx.protect(&mut buf, plain.len()),
        Err(SrtpError::IndexExhausted { ssrc: Ssrc(1) })
    );
    let mut rtcp = SrtcpContext::new(profile, &key(profile), &SrtpOptions::default()).unwrap();
    rtcp.set_send_index(Ssrc(1), srtpd::srtp::MAX_SRTCP_INDEX)
        .unwrap();
    let sr = rtcp_sender_report(1, 0);
    let mut buf = with_room(&sr, rtcp.overhead());
    assert!(rtcp.protect(&mut buf, sr.len()).is_ok());
    assert_eq!(
        rtcp.protect(&mut buf, sr.len()),
        Err(SrtpError::IndexExhausted { ssrc: Ssrc(1) })
    );
}

#[test]
fn options_out_of_range_are_refused() {
    let k = key(SrtpProfile::AesCm128HmacSha1_80);
    let bad = |options: SrtpOptions, profile| SrtpContext::new(profile, &k, &options).err();
    let small_window = SrtpOptions {
        replay_window: 32,
        ..Default::default()
    };
    assert!(bad(small_window, SrtpProfile::AesCm128HmacSha1_80).is_some());
    for tag in [0, 3, 11, 20] {
        let o = SrtpOptions {
            rtp_tag_len: Some(tag),
            ..Default::default()
        };
        assert!(
            bad(o, SrtpProfile::AesCm128HmacSha1_80).is_some(),
            "tag {tag}"
        );
    }
    let gcm_tag = SrtpOptions {
        rtp_tag_len: Some(4),
        ..Default::default()
    };
    let gcm_key = key(SrtpProfile::AeadAes128Gcm);
    assert!(SrtpContext::new(SrtpProfile::AeadAes128Gcm, &gcm_key, &gcm_tag).is_err());
    // A key of the wrong profile.
    assert!(
        SrtpContext::new(
            SrtpProfile::AesCm256HmacSha1_80,
            &k,
            &SrtpOptions::default()
        )
        .is_err()
    );
}

/// An RTP packet with arbitrary header fields, CSRCs, extension and payload.
fn arbitrary_rtp() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<(bool, bool, u8, u16, u32, u32)>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((any::<u16>(), prop::collection::vec(any::<u32>(), 0..8))),
        prop::collection::vec(any::<u8>(), 0..1400),
    )
        .prop_map(
            |((padding, marker, pt, seq, ts, ssrc), csrcs, ext, payload)| {
                let mut p = vec![
                    0x80 | (u8::from(padding) << 5)
                        | (u8::from(ext.is_some()) << 4)
                        | csrcs.len() as u8,
                    (u8::from(marker) << 7) | (pt & 0x7f),
                ];
                p.extend_from_slice(&seq.to_be_bytes());
                p.extend_from_slice(&ts.to_be_bytes());
                p.extend_from_slice(&ssrc.to_be_bytes());
                for c in &csrcs {
                    p.extend_from_slice(&c.to_be_bytes());
                }
                if let Some((profile, words)) = &ext {
                    p.extend_from_slice(&profile.to_be_bytes());
                    p.extend_from_slice(&(words.len() as u16).to_be_bytes());
                    for w in words {
                        p.extend_from_slice(&w.to_be_bytes());
                    }
                }
                p.extend_from_slice(&payload);
                p
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn round_trips_any_rtp_packet(plain in arbitrary_rtp(), profile in 0..6usize) {
        let profile = SrtpProfile::ALL[profile];
        let (mut tx, mut rx) = pair(profile, 1024);
        let mut wire = protect(&mut tx, &plain);
        prop_assert_eq!(wire.len(), plain.len() + tx.overhead());
        let n = rx.unprotect(&mut wire).unwrap();
        prop_assert_eq!(&wire[..n], &plain[..]);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic(mut junk in prop::collection::vec(any::<u8>(), 0..300), profile in 0..6usize) {
        let profile = SrtpProfile::ALL[profile];
        let (mut tx, mut rx) = pair(profile, 64);
        let _ = rx.unprotect(&mut junk.clone());
        let mut rtcp = SrtcpContext::new(profile, &key(profile), &SrtpOptions::default()).unwrap();
        let _ = rtcp.unprotect(&mut junk.clone());
        let len = junk.len();
        junk.resize(len + 30, 0);
        let _ = tx.protect(&mut junk, len);
        let _ = rtcp.protect(&mut junk, len);
        prop_assert_eq!(rx.recv_ssrcs().count(), 0);
    }
}
