//! SRTP protect and unprotect: srtpd's in-place contexts against webrtc-srtp, in one run.
//!
//! Both sides see the same keys and packets (12-byte header plus a 160- or 1200-byte
//! payload, a new sequence number per packet). Both receivers run with a 1024-packet replay
//! window, as a production receiver would.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use srtpd::srtp::{MasterKey, SrtpContext, SrtpOptions, SrtpProfile};
use webrtc_srtp::context::Context as WebrtcContext;
use webrtc_srtp::option::srtp_replay_protection;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PROFILES: [(SrtpProfile, ProtectionProfile); 3] = [
    (
        SrtpProfile::AesCm128HmacSha1_80,
        ProtectionProfile::Aes128CmHmacSha1_80,
    ),
    (
        SrtpProfile::AesCm128HmacSha1_32,
        ProtectionProfile::Aes128CmHmacSha1_32,
    ),
    (SrtpProfile::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm),
];
const PAYLOADS: [usize; 2] = [160, 1200];

fn key(profile: SrtpProfile) -> MasterKey {
    MasterKey::new(
        profile,
        &vec![0x11; profile.key_len()],
        &vec![0x22; profile.salt_len()],
    )
    .unwrap()
}

fn srtpd(profile: SrtpProfile) -> SrtpContext {
    SrtpContext::new(profile, &key(profile), &SrtpOptions::default()).unwrap()
}

fn webrtc(profile: SrtpProfile, theirs: ProtectionProfile) -> WebrtcContext {
    let k = key(profile);
    WebrtcContext::new(
        k.key(),
        k.salt(),
        theirs,
        Some(srtp_replay_protection(1024)),
        None,
    )
    .unwrap()
}

/// A plain RTP packet with `payload` bytes, in a buffer with 16 spare bytes for the tag.
fn packet(payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 111, 0, 0, 0, 0, 0x03, 0xc0, 0xde, 0xad, 0xbe, 0xef];
    p.extend((0..payload).map(|i| i as u8));
    p.resize(12 + payload + 16, 0);
    p
}

fn set_seq(buf: &mut [u8], seq: u16) {
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
}

fn protect(c: &mut Criterion) {
    for (profile, theirs) in PROFILES {
        for payload in PAYLOADS {
            let mut group = c.benchmark_group(format!("protect/{}/{payload}", profile.name()));
            group.throughput(Throughput::Bytes(payload as u64));
            let len = 12 + payload;

            group.bench_function("srtpd", |b| {
                let mut ctx = srtpd(profile);
                let mut buf = packet(payload);
                let mut seq = 0u16;
                b.iter(|| {
                    seq = seq.wrapping_add(1);
                    set_seq(&mut buf, seq);
                    black_box(ctx.protect(black_box(&mut buf), len).unwrap())
                });
            });

            group.bench_function("webrtc-srtp", |b| {
                let mut ctx = webrtc(profile, theirs);
                let mut plain = packet(payload);
                plain.truncate(len);
                let mut seq = 0u16;
                b.iter(|| {
                    seq = seq.wrapping_add(1);
                    set_seq(&mut plain, seq);
                    black_box(ctx.encrypt_rtp(black_box(&plain)).unwrap())
                });
            });
            group.finish();
        }
    }
}

fn unprotect(c: &mut Criterion) {
    for (profile, theirs) in PROFILES {
        for payload in PAYLOADS {
            let mut group = c.benchmark_group(format!("unprotect/{}/{payload}", profile.name()));
            group.throughput(Throughput::Bytes(payload as u64));
            let len = 12 + payload;

            // Each iteration gets a fresh protected packet (made outside the timing), so the
            // replay window sees a new index every time.
            let sender = |profile| {
                let mut tx = srtpd(profile);
                let mut seq = 0u16;
                move || {
                    seq = seq.wrapping_add(1);
                    let mut buf = packet(payload);
                    set_seq(&mut buf, seq);
                    let n = tx.protect(&mut buf, len).unwrap();
                    buf.truncate(n);
                    buf
                }
            };

            group.bench_function("srtpd", |b| {
                let mut rx = srtpd(profile);
                b.iter_batched_ref(
                    sender(profile),
                    |wire| black_box(rx.unprotect(black_box(wire)).unwrap()),
                    BatchSize::SmallInput,
                );
            });

            group.bench_function("webrtc-srtp", |b| {
                let mut rx = webrtc(profile, theirs);
                b.iter_batched_ref(
                    sender(profile),
                    |wire| black_box(rx.decrypt_rtp(black_box(wire)).unwrap()),
                    BatchSize::SmallInput,
                );
            });
            group.finish();
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(60)
}

criterion_group! {
    name = benches;
    config = config();
    targets = protect, unprotect
}
criterion_main!(benches);
