//! What a peer's audio packets reach on a PCM track: the jitter buffer (any sequence numbers,
//! timestamps, sizes and arrival times), the decoders (Opus, G.711) and the telephone-event
//! reader. Each record: kind, sequence number, timestamp, ms since the last, length, payload.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use srtpd::media::codec::{AudioDecoder, CodecKind, MAX_FRAME_SAMPLES};
use srtpd::media::dtmf::DtmfReceiver;
use srtpd::media::jitter::{JitterBuffer, Playout};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut jitter = JitterBuffer::new(20, 48_000);
    let mut opus = AudioDecoder::new(CodecKind::Opus).unwrap();
    let mut pcmu = AudioDecoder::new(CodecKind::Pcmu).unwrap();
    let mut dtmf = DtmfReceiver::default();
    let mut pcm = vec![0i16; MAX_FRAME_SAMPLES];
    let mut rest = data;
    while rest.len() >= 10 {
        let (head, tail) = rest.split_at(10);
        let seq = u16::from_be_bytes([head[1], head[2]]);
        let ts = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        now += Duration::from_millis(u64::from(head[7]));
        let len = usize::from(u16::from_be_bytes([head[8], head[9]])).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        match head[0] % 3 {
            0 => {
                jitter.push(seq, ts, payload, now);
                let frame = match jitter.pop(now) {
                    Playout::Packet(p) => opus.decode(p, &mut pcm).ok(),
                    Playout::Lost { next: Some(p) } => opus.recover(p, &mut pcm[..960]).ok(),
                    Playout::Lost { next: None } | Playout::Dry => {
                        opus.conceal(&mut pcm[..960]).ok()
                    }
                    Playout::Waiting => None,
                };
                assert!(frame.is_none_or(|n| n <= MAX_FRAME_SAMPLES));
            }
            1 => {
                let _ = pcmu.decode(payload, &mut pcm);
            }
            _ => {
                if let Some(d) = dtmf.on_packet(ts, payload) {
                    assert!("0123456789*#ABCD".contains(d));
                }
            }
        }
        let s = jitter.stats();
        assert!(s.target_ms >= 20 && s.target_ms <= 200);
    }
});
