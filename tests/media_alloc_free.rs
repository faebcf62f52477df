//! A bridged track's audio path allocates nothing per frame once running, both ways: the
//! peer's Opus through the jitter buffer (with losses recovered from FEC), decoding,
//! resampling to 8 kHz, µ-law and the Twilio `media` message; the bot's µ-law decoded, queued,
//! resampled to 48 kHz and encoded to Opus. Counted by a global allocator that tallies the
//! allocations made on the calling thread (libopus itself allocates only when a codec is
//! made).

mod common;

use std::time::{Duration, Instant};

use common::alloc::{CountingAllocator, allocations};
use srtpd::media::bridge_audio::{PcmReceiver, PcmSender};
use srtpd::media::bridge_frame::{BridgeFormat, BridgeStream};
use srtpd::media::codec::{AudioDecoder, AudioEncoder, CodecKind};

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
    // The peer's Opus packets of a tone, made beforehand; every tenth is lost on the way.
    let mut peer = AudioEncoder::new(CodecKind::Opus).unwrap();
    let packets: Vec<Vec<u8>> = (0..usize::from(FRAMES))
        .map(|k| {
            let mut p = [0u8; 1500];
            let n = peer.encode(&tone(960, k * 960), &mut p).unwrap();
            p[..n].to_vec()
        })
        .collect();
    let from_bot = vec![0xffu8; 160];

    let mut receiver = PcmReceiver::new(CodecKind::Opus, 20, 48_000, 8_000).unwrap();
    let mut ulaw = AudioEncoder::new(CodecKind::Pcmu).unwrap();
    let mut stream = BridgeStream::new(BridgeFormat::Twilio, "MZ1".into(), "CALL-1");
    let mut message = String::with_capacity(512);
    let mut bot_ulaw = AudioDecoder::new(CodecKind::Pcmu).unwrap();
    let mut bot_pcm = vec![0i16; 160];
    let mut sender = PcmSender::new(CodecKind::Opus, 8_000, 1_000).unwrap();
    let (mut to_bot, mut to_peer) = ([0u8; 160], [0u8; 1500]);
    let mut passed = Vec::with_capacity(8);
    let (mut sent, mut heard) = (0u32, 0u32);

    let t0 = Instant::now();
    let mut frame = |k: u16| {
        let now = t0 + Duration::from_millis(20 * u64::from(k));
        if k % 10 != 5 {
            receiver.on_packet(k, u32::from(k) * 960, &packets[usize::from(k)], now);
        }
        if let Some(pcm) = receiver.tick(now + Duration::from_millis(20)) {
            ulaw.encode(pcm, &mut to_bot).unwrap();
            stream.media(&to_bot, 20 * u64::from(k), &mut message);
            heard += 1;
        }
        bot_ulaw.decode(&from_bot, &mut bot_pcm).unwrap();
        sender.push(bot_pcm.iter().copied());
        if sender
            .next_payload(&mut to_peer, &mut passed)
            .unwrap()
            .is_some()
        {
            sent += 1;
        }
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
    assert!(
        heard >= u32::from(FRAMES) - 3 && sent == u32::from(FRAMES),
        "{heard} {sent}"
    );
    let stats = receiver.stats();
    assert!(stats.lost >= 45 && stats.recovered >= 45, "{stats:?}");
}
