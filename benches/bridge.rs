//! One 20 ms frame each way through a bot bridge, against the codec alone in the same run.
//!
//! - `bridge/twilio`: the peer's Opus packet into the jitter buffer, out as a frame, decoded,
//!   resampled to 8 kHz, µ-law, the Twilio `media` message (JSON, base64); and the bot's 20 ms
//!   of µ-law back: decoded, queued, resampled to 48 kHz, encoded to Opus.
//! - `bridge/l16_48k`: the same with the L16 dialect at 48 kHz (no resampling, no µ-law).
//! - `codec/opus`: libopus alone, decoding the same packet and encoding the same frame: the
//!   floor every bridge pays.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use srtpd::media::bridge_audio::{PcmReceiver, PcmSender};
use srtpd::media::bridge_frame::{BridgeFormat, BridgeStream, write_l16};
use srtpd::media::codec::{AudioDecoder, AudioEncoder, CodecKind, MAX_FRAME_SAMPLES};

/// A second of speech-like audio (a tone with a slow vibrato) at `rate`, in 20 ms frames.
fn frames(rate: u32) -> Vec<Vec<i16>> {
    let n = rate as usize / 50;
    (0..50)
        .map(|k| {
            (k * n..(k + 1) * n)
                .map(|i| {
                    let t = i as f64 / f64::from(rate);
                    (8_000.0 * (std::f64::consts::TAU * (300.0 + 40.0 * (3.0 * t).sin()) * t).sin())
                        as i16
                })
                .collect()
        })
        .collect()
}

/// The same second as Opus packets.
fn packets() -> Vec<Vec<u8>> {
    let mut enc = AudioEncoder::new(CodecKind::Opus).unwrap();
    frames(48_000)
        .iter()
        .map(|pcm| {
            let mut p = [0u8; 1500];
            let n = enc.encode(pcm, &mut p).unwrap();
            p[..n].to_vec()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let packets = packets();
    let mut group = c.benchmark_group("frame_each_way");
    group.measurement_time(Duration::from_secs(4));

    // The codec alone: decode the peer's packet, encode the bot's 20 ms.
    {
        let speech = frames(48_000);
        let mut dec = AudioDecoder::new(CodecKind::Opus).unwrap();
        let mut enc = AudioEncoder::new(CodecKind::Opus).unwrap();
        let mut pcm = vec![0i16; MAX_FRAME_SAMPLES];
        let mut out = [0u8; 1500];
        let mut k = 0;
        group.bench_function("codec/opus", |b| {
            b.iter(|| {
                let n = dec.decode(&packets[k % 50], &mut pcm).unwrap();
                let m = enc.encode(&speech[k % 50], &mut out).unwrap();
                k += 1;
                black_box((n, m))
            })
        });
    }

    for (name, format) in [
        ("bridge/twilio", BridgeFormat::Twilio),
        ("bridge/l16_48k", BridgeFormat::L16 { rate: 48_000 }),
    ] {
        let rate = format.rate();
        let mut rx = PcmReceiver::new(CodecKind::Opus, 20, 48_000, rate).unwrap();
        let mut tx = PcmSender::new(CodecKind::Opus, rate, 1_000).unwrap();
        let mut ulaw = AudioEncoder::new(CodecKind::Pcmu).unwrap();
        let mut bot_ulaw = AudioDecoder::new(CodecKind::Pcmu).unwrap();
        let mut stream = BridgeStream::new(format, "MZ1".into(), "C1");
        let mut text = String::with_capacity(512);
        let mut binary = Vec::with_capacity(rate as usize / 25);
        let mut to_bot = vec![0u8; 160];
        let speech = frames(rate);
        let from_bot_ulaw: Vec<Vec<u8>> = frames(8_000)
            .iter()
            .map(|f| {
                let mut u = vec![0u8; 160];
                ulaw.encode(f, &mut u).unwrap();
                u
            })
            .collect();
        let mut bot_pcm = vec![0i16; 160];
        let mut payload = [0u8; 1500];
        let mut passed = Vec::new();
        let t0 = Instant::now();
        let mut k: u32 = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                // Time runs as the packets do: one packet and one tick per 20 ms.
                let now = t0 + Duration::from_millis(20 * u64::from(k));
                rx.on_packet(k as u16, k * 960, &packets[k as usize % 50], now);
                if let Some(frame) = rx.tick(now + Duration::from_millis(20)) {
                    match format {
                        BridgeFormat::Twilio => {
                            ulaw.encode(frame, &mut to_bot).unwrap();
                            stream.media(&to_bot, u64::from(k) * 20, &mut text);
                        }
                        BridgeFormat::L16 { .. } => write_l16(frame, &mut binary),
                    }
                }
                match format {
                    BridgeFormat::Twilio => {
                        bot_ulaw
                            .decode(&from_bot_ulaw[k as usize % 50], &mut bot_pcm)
                            .unwrap();
                        tx.push(bot_pcm.iter().copied());
                    }
                    BridgeFormat::L16 { .. } => {
                        tx.push(speech[k as usize % 50].iter().copied());
                    }
                }
                let n = tx.next_payload(&mut payload, &mut passed).unwrap();
                k += 1;
                black_box(n)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
