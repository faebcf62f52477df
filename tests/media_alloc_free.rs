//! The PCM path of a bridged track allocates nothing per frame once running, both ways:
//! jitter buffer, Opus decode (with loss recovery), resampling to 8 kHz and µ-law; and µ-law
//! from a bot, resampling to 48 kHz and Opus encode. Counted by a global allocator that
//! tallies the allocations made on the calling thread (libopus itself allocates only when a
//! codec is made).

mod common;

use std::time::{Duration, Instant};

use common::alloc::{CountingAllocator, allocations};
use srtpd::media::codec::{AudioDecoder, AudioEncoder, CodecKind, MAX_FRAME_SAMPLES};
use srtpd::media::jitter::{JitterBuffer, Playout};
use srtpd::media::resample::FrameResampler;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const FRAMES: u16 = 500;

fn tone(n: usize, phase: usize) -> Vec<i16> {
    (phase..phase + n)
        .map(|i| (8_000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / 48_000.0).sin()) as i16)
        .collect()
}

#[test]
fn a_bridged_frame_allocates_nothing_either_way() {
    // Opus packets of a tone, made beforehand; every tenth is lost on the way.
    let mut peer = AudioEncoder::new(CodecKind::Opus).unwrap();
    let packets: Vec<Vec<u8>> = (0..usize::from(FRAMES))
        .map(|k| {
            let mut p = [0u8; 1500];
            let n = peer.encode(&tone(960, k * 960), &mut p).unwrap();
            p[..n].to_vec()
        })
        .collect();
    let from_bot: Vec<Vec<u8>> = packets.iter().map(|_| vec![0xffu8; 160]).collect();

    let mut jitter = JitterBuffer::new(20, 48_000);
    let mut decoder = AudioDecoder::new(CodecKind::Opus).unwrap();
    let mut down = FrameResampler::new(48_000, 8_000).unwrap();
    let mut ulaw = AudioEncoder::new(CodecKind::Pcmu).unwrap();
    let mut bot_decoder = AudioDecoder::new(CodecKind::Pcmu).unwrap();
    let mut up = FrameResampler::new(8_000, 48_000).unwrap();
    let mut encoder = AudioEncoder::new(CodecKind::Opus).unwrap();
    let (mut pcm48, mut pcm8) = (vec![0i16; MAX_FRAME_SAMPLES], vec![0i16; 160]);
    let (mut to_bot, mut to_peer) = ([0u8; 160], [0u8; 1500]);

    let t0 = Instant::now();
    let mut frame = |k: u16| {
        let now = t0 + Duration::from_millis(20 * u64::from(k));
        if k % 10 != 5 {
            jitter.push(k, u32::from(k) * 960, &packets[usize::from(k)], now);
        }
        let n = match jitter.pop(now + Duration::from_millis(20)) {
            Playout::Packet(p) => decoder.decode(p, &mut pcm48).unwrap(),
            Playout::Lost { next: Some(p) } => decoder.recover(p, &mut pcm48[..960]).unwrap(),
            Playout::Lost { next: None } | Playout::Dry => {
                decoder.conceal(&mut pcm48[..960]).unwrap()
            }
            Playout::Waiting => 0,
        };
        if n == 960 {
            down.process(&pcm48[..960], &mut pcm8).unwrap();
            ulaw.encode(&pcm8, &mut to_bot).unwrap();
        }
        bot_decoder
            .decode(&from_bot[usize::from(k)], &mut pcm8)
            .unwrap();
        up.process(&pcm8, &mut pcm48[..960]).unwrap();
        encoder.encode(&pcm48[..960], &mut to_peer).unwrap();
    };
    for k in 0..20 {
        frame(k);
    }
    let before = allocations();
    for k in 20..FRAMES {
        frame(k);
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations in {} frames",
        FRAMES - 20
    );
    let stats = jitter.stats();
    assert!(stats.lost >= 45 && stats.recovered >= 45, "{stats:?}");
}
