//! What a voice bot sends over the bridge's WebSocket: text frames in either dialect and L16
//! binary frames, read into the bridge's input, then fed to a call's bridge. Any bytes give a
//! typed error or an input within the bounds.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use srtpd::call::TrackParams;
use srtpd::call::bridge::{BridgeInput, BridgeMessage, BridgeOutlet, BridgeSpec, CallBridge};
use srtpd::media::bridge_frame::{BridgeFormat, FromBot, MAX_BOT_AUDIO, read_l16, read_text};
use srtpd::media::codec::CodecKind;

struct Discard;

impl BridgeOutlet for Discard {
    fn send(&self, _: BridgeMessage) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = if first & 1 == 0 {
        BridgeFormat::Twilio
    } else {
        BridgeFormat::L16 { rate: 16_000 }
    };
    let t0 = Instant::now();
    let mut bridge = CallBridge::new(
        BridgeSpec {
            format,
            stream_sid: "MZ".into(),
            parameters: serde_json::Map::new(),
            max_queue_ms: 200,
            silence_when_idle: true,
            outlet: Arc::new(Discard),
        },
        "F",
        &TrackParams {
            payload_type: 111,
            clock_rate: 48_000,
            ptime_ms: 20,
            dtmf_payload_type: None,
            codec: Some(CodecKind::Opus),
        },
        t0,
    )
    .unwrap();
    let input = if first & 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let mut audio = Vec::new();
        match read_text(format, text, &mut audio) {
            Ok(FromBot::Media) => {
                assert!(audio.len() <= MAX_BOT_AUDIO);
                BridgeInput::Ulaw(audio)
            }
            Ok(FromBot::Mark(name)) => BridgeInput::Mark(name),
            Ok(FromBot::Clear) => BridgeInput::Clear,
            Ok(FromBot::Ignored) | Err(_) => return,
        }
    } else {
        let mut pcm = Vec::new();
        if read_l16(rest, &mut pcm).is_err() {
            return;
        }
        BridgeInput::Pcm(pcm)
    };
    bridge.input(input);
    let mut packet = [0u8; 1500];
    for k in 0..15 {
        let _ = bridge.due(t0 + Duration::from_millis(20 * k), &mut packet);
    }
    // 200 ms queued at most: ten packets of it, then silence.
    assert!(bridge.stats().packets_from_bot <= 11);
});
