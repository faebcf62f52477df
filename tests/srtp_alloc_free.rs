//! Protect and unprotect allocate nothing in steady state, for every profile: counted by a
//! global allocator that tallies the allocations made on the calling thread.

mod common;

use common::alloc::{CountingAllocator, allocations};

use common::{rtcp_sender_report, rtp_packet_with_csrcs_and_extension, with_room};
use srtpd::srtp::{MasterKey, SrtcpContext, SrtpContext, SrtpOptions, SrtpProfile};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = allocations();
    f();
    allocations() - before
}

const PACKETS: u16 = 5_000;

#[test]
fn rtp_protect_and_unprotect_allocate_nothing_per_packet() {
    for profile in SrtpProfile::ALL {
        let key = MasterKey::new(
            profile,
            &vec![3; profile.key_len()],
            &vec![4; profile.salt_len()],
        )
        .unwrap();
        let mut tx = SrtpContext::new(profile, &key, &SrtpOptions::default()).unwrap();
        let mut rx = SrtpContext::new(profile, &key, &SrtpOptions::default()).unwrap();
        let template = rtp_packet_with_csrcs_and_extension(64_000, 0xabcd, &[0x55; 1000]);
        let plain_len = template.len();
        let mut buf = with_room(&template, 16);

        // Warm-up: the first packet of each direction creates the stream's state.
        let n = tx.protect(&mut buf, plain_len).unwrap();
        rx.unprotect(&mut buf[..n]).unwrap();

        let allocations = allocations_during(|| {
            for seq in 1..=PACKETS {
                // Starting from 65000 crosses the rollover inside the measured loop.
                let seq = seq.wrapping_add(64_000);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                let n = tx.protect(&mut buf, plain_len).unwrap();
                let m = rx.unprotect(&mut buf[..n]).unwrap();
                assert_eq!(m, plain_len);
            }
        });
        assert_eq!(
            allocations, 0,
            "{profile}: {allocations} allocations over {PACKETS} packets"
        );
    }
}

#[test]
fn rtcp_protect_and_unprotect_allocate_nothing_per_packet() {
    for profile in SrtpProfile::ALL {
        let key = MasterKey::new(
            profile,
            &vec![5; profile.key_len()],
            &vec![6; profile.salt_len()],
        )
        .unwrap();
        let mut tx = SrtcpContext::new(profile, &key, &SrtpOptions::default()).unwrap();
        let mut rx = SrtcpContext::new(profile, &key, &SrtpOptions::default()).unwrap();
        let template = rtcp_sender_report(0x99, 1);
        let mut buf = with_room(&template, tx.overhead());
        let n = tx.protect(&mut buf, template.len()).unwrap();
        rx.unprotect(&mut buf[..n]).unwrap();

        let allocations = allocations_during(|| {
            for _ in 0..PACKETS {
                let n = tx.protect(&mut buf, template.len()).unwrap();
                assert_eq!(rx.unprotect(&mut buf[..n]).unwrap(), template.len());
            }
        });
        assert_eq!(
            allocations, 0,
            "{profile}: {allocations} allocations over {PACKETS} packets"
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_during(|| {
        std::hint::black_box(vec![0u8; 64]);
    });
    assert_eq!(n, 1);
}
