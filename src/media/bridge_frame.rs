//! The bot bridge's framing: the messages of the two WebSocket dialects a voice bot speaks.
//!
//! - `twilio`: Twilio Media Streams, exactly as Twilio sends them to a bot's server:
//!   `connected`, `start` (stream and call ids, tracks, custom parameters, media format),
//!   `media` every 20 ms (160 bytes of µ-law 8 kHz, base64), `dtmf`, `mark` echoes, `stop`,
//!   with `sequenceNumber`, `chunk` and `timestamp` as decimal strings; from the bot, `media`
//!   (any length), `mark` and `clear`.
//! - `l16`: 20 ms binary frames of signed 16-bit little-endian mono PCM at the bridge's rate,
//!   both ways; text frames carry the same JSON events (`start`, `dtmf`, `mark`, `clear`,
//!   `stop`).
//!
//! Messages are written into a caller's `String` (cleared first), so a steady stream of media
//! messages reuses one buffer.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The most bytes of audio one message from the bot may carry (decoded): 10 s of µ-law, or
/// 1 s of L16 at 48 kHz.
pub const MAX_BOT_AUDIO: usize = 96_000;

/// A bridge's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeFormat {
    /// Twilio Media Streams: JSON text frames, µ-law 8 kHz.
    Twilio,
    /// Binary 16-bit little-endian PCM frames at `rate` Hz, JSON text frames for events.
    L16 {
        /// 8,000, 16,000, 24,000 or 48,000.
        rate: u32,
    },
}

impl BridgeFormat {
    /// The rate of the bridge's audio.
    pub fn rate(self) -> u32 {
        match self {
            BridgeFormat::Twilio => 8_000,
            BridgeFormat::L16 { rate } => rate,
        }
    }
}

/// How every `media` message srtpd sends begins (its first field), so that a queue of
/// messages can tell audio from events without parsing them.
pub const MEDIA_PREFIX: &str = r#"{"event":"media""#;

/// The messages srtpd sends a bot on one stream, numbered in order.
#[derive(Debug)]
pub struct BridgeStream {
    format: BridgeFormat,
    stream_sid: String,
    call_sid: String,
    /// The last `sequenceNumber` used.
    sequence: u64,
    /// The last media `chunk` number used.
    chunk: u64,
}

impl BridgeStream {
    /// A stream of call `call_id` (Twilio's `callSid`), identified to the bot as `stream_sid`.
    pub fn new(format: BridgeFormat, stream_sid: String, call_id: &str) -> Self {
        BridgeStream {
            format,
            stream_sid,
            call_sid: call_id.to_owned(),
            sequence: 0,
            chunk: 0,
        }
    }

    /// The stream's id.
    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    /// The wire format.
    pub fn format(&self) -> BridgeFormat {
        self.format
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// The first message: Twilio's `connected` (none in the L16 dialect).
    pub fn connected(&self) -> Option<String> {
        match self.format {
            BridgeFormat::Twilio => Some(
                json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
            ),
            BridgeFormat::L16 { .. } => None,
        }
    }

    /// `start`, with the bot's `customParameters`.
    pub fn start(&mut self, custom_parameters: &Map<String, Value>) -> String {
        let seq = self.next_sequence().to_string();
        let media_format = match self.format {
            BridgeFormat::Twilio => {
                json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
            }
            BridgeFormat::L16 { rate } => {
                json!({"encoding": "audio/l16", "sampleRate": rate, "channels": 1})
            }
        };
        json!({
            "event": "start",
            "sequenceNumber": seq,
            "start": {
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": custom_parameters,
                "mediaFormat": media_format,
            },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// A Twilio `media` message of `ulaw` (20 ms of µ-law), `timestamp_ms` after the start,
    /// written into `out`.
    pub fn media(&mut self, ulaw: &[u8], timestamp_ms: u64, out: &mut String) {
        let seq = self.next_sequence();
        self.chunk += 1;
        out.clear();
        let _ = write!(
            out,
            r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{}","timestamp":"{timestamp_ms}","payload":""#,
            self.chunk
        );
        B64.encode_string(ulaw, out);
        let _ = write!(out, r#""}},"streamSid":"{}"}}"#, self.stream_sid);
    }

    /// `dtmf`: the peer pressed `digit`.
    pub fn dtmf(&mut self, digit: char) -> String {
        let seq = self.next_sequence().to_string();
        json!({
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": seq,
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
        })
        .to_string()
    }

    /// `mark`: the audio the bot queued before its mark `name` has been sent.
    pub fn mark(&mut self, name: &str) -> String {
        let seq = self.next_sequence().to_string();
        json!({
            "event": "mark",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        })
        .to_string()
    }

    /// `stop`: the stream ends (the call ended, or the bridge was detached).
    pub fn stop(&mut self) -> String {
        let seq = self.next_sequence().to_string();
        json!({
            "event": "stop",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "stop": {"callSid": self.call_sid},
        })
        .to_string()
    }
}

/// A message from the bot, read.
#[derive(Debug, PartialEq, Eq)]
pub enum FromBot {
    /// Audio to send: its bytes (µ-law for Twilio, L16 for binary frames) are in the buffer
    /// handed to [`read_text`] or were the binary frame.
    Media,
    /// A mark to echo once the audio queued before it has been sent.
    Mark(String),
    /// Drop the queued audio now (barge-in).
    Clear,
    /// A message srtpd takes no action on (Twilio's own events echoed, unknown events).
    Ignored,
}

/// Why a bot's message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BotMessageError {
    /// Not JSON, or not an object with an `event`.
    #[error("not a JSON message with an event: {0}")]
    Malformed(String),
    /// A `media` message without a payload, or with one that is not base64.
    #[error("a media message without a base64 payload")]
    BadPayload,
    /// More audio in one message than [`MAX_BOT_AUDIO`].
    #[error("more than {MAX_BOT_AUDIO} bytes of audio in one message")]
    TooLong,
    /// Audio in a dialect where it travels in binary frames.
    #[error("audio in a text frame: the l16 format sends it in binary frames")]
    AudioInText,
}

#[derive(Deserialize)]
struct BotMessage<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(default)]
    media: Option<BotMedia<'a>>,
    #[serde(default)]
    mark: Option<BotMark>,
}

#[derive(Deserialize)]
struct BotMedia<'a> {
    #[serde(borrow)]
    payload: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BotMark {
    name: String,
}

/// Reads a text frame from the bot; a `media` message's audio is decoded into `audio`
/// (cleared first).
pub fn read_text(
    format: BridgeFormat,
    text: &str,
    audio: &mut Vec<u8>,
) -> Result<FromBot, BotMessageError> {
    let m: BotMessage<'_> =
        serde_json::from_str(text).map_err(|e| BotMessageError::Malformed(e.to_string()))?;
    match m.event.as_ref() {
        "media" => {
            if format != BridgeFormat::Twilio {
                return Err(BotMessageError::AudioInText);
            }
            let payload = m
                .media
                .and_then(|p| p.payload)
                .ok_or(BotMessageError::BadPayload)?;
            if base64::decoded_len_estimate(payload.len()) > MAX_BOT_AUDIO + 3 {
                return Err(BotMessageError::TooLong);
            }
            audio.clear();
            B64.decode_vec(payload.as_bytes(), audio)
                .map_err(|_| BotMessageError::BadPayload)?;
            if audio.len() > MAX_BOT_AUDIO {
                audio.clear();
                return Err(BotMessageError::TooLong);
            }
            Ok(FromBot::Media)
        }
        "mark" => match m.mark {
            Some(mark) => Ok(FromBot::Mark(mark.name)),
            None => Err(BotMessageError::Malformed(
                "a mark without a name".to_owned(),
            )),
        },
        "clear" => Ok(FromBot::Clear),
        _ => Ok(FromBot::Ignored),
    }
}

/// Reads an L16 binary frame's samples into `pcm` (cleared first); an odd trailing byte is
/// dropped.
pub fn read_l16(frame: &[u8], pcm: &mut Vec<i16>) -> Result<(), BotMessageError> {
    if frame.len() > MAX_BOT_AUDIO {
        return Err(BotMessageError::TooLong);
    }
    pcm.clear();
    pcm.extend(
        frame
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]])),
    );
    Ok(())
}

/// Writes `pcm` as an L16 binary frame into `out` (cleared first).
pub fn write_l16(pcm: &[i16], out: &mut Vec<u8>) {
    out.clear();
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn twilio_messages_in_order_with_their_fields() {
        let mut s = BridgeStream::new(BridgeFormat::Twilio, "MZ0001".into(), "CALL-1");
        assert_eq!(
            parse(&s.connected().unwrap()),
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        );
        let mut params = Map::new();
        params.insert("lang".into(), json!("en"));
        assert_eq!(
            parse(&s.start(&params)),
            json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ0001",
                   "start": {"streamSid": "MZ0001", "callSid": "CALL-1", "tracks": ["inbound"],
                             "customParameters": {"lang": "en"},
                             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        );
        let mut out = String::new();
        s.media(&[0xff; 160], 20, &mut out);
        assert!(out.starts_with(MEDIA_PREFIX), "{out}");
        let m = parse(&out);
        assert_eq!(m["event"], "media");
        assert_eq!(m["sequenceNumber"], "2");
        assert_eq!(m["streamSid"], "MZ0001");
        assert_eq!(m["media"]["track"], "inbound");
        assert_eq!(m["media"]["chunk"], "1");
        assert_eq!(m["media"]["timestamp"], "20");
        let payload = B64.decode(m["media"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, vec![0xff; 160]);
        let capacity = out.capacity();
        s.media(&[0x7f; 160], 40, &mut out);
        assert_eq!(out.capacity(), capacity, "the buffer is reused");
        assert_eq!(parse(&out)["media"]["chunk"], "2");
        assert_eq!(
            parse(&s.dtmf('#')),
            json!({"event": "dtmf", "streamSid": "MZ0001", "sequenceNumber": "4",
                   "dtmf": {"track": "inbound_track", "digit": "#"}})
        );
        assert_eq!(
            parse(&s.mark("greeting")),
            json!({"event": "mark", "sequenceNumber": "5", "streamSid": "MZ0001",
                   "mark": {"name": "greeting"}})
        );
        assert_eq!(
            parse(&s.stop()),
            json!({"event": "stop", "sequenceNumber": "6", "streamSid": "MZ0001",
                   "stop": {"callSid": "CALL-1"}})
        );
    }

    #[test]
    fn what_a_twilio_bot_sends_is_read() {
        let f = BridgeFormat::Twilio;
        let mut audio = Vec::new();
        let media = format!(
            r#"{{"event":"media","streamSid":"MZ0001","media":{{"payload":"{}"}}}}"#,
            B64.encode([1u8, 2, 3, 0xff])
        );
        assert_eq!(read_text(f, &media, &mut audio), Ok(FromBot::Media));
        assert_eq!(audio, [1, 2, 3, 0xff]);
        assert_eq!(
            read_text(
                f,
                r#"{"event":"mark","streamSid":"MZ0001","mark":{"name":"m1"}}"#,
                &mut audio
            ),
            Ok(FromBot::Mark("m1".into()))
        );
        assert_eq!(
            read_text(f, r#"{"event":"clear","streamSid":"MZ0001"}"#, &mut audio),
            Ok(FromBot::Clear)
        );
        assert_eq!(
            read_text(f, r#"{"event":"connected"}"#, &mut audio),
            Ok(FromBot::Ignored)
        );
        assert!(matches!(
            read_text(f, "hello", &mut audio),
            Err(BotMessageError::Malformed(_))
        ));
        assert!(matches!(
            read_text(f, r#"{"media":{}}"#, &mut audio),
            Err(BotMessageError::Malformed(_))
        ));
        assert_eq!(
            read_text(
                f,
                r#"{"event":"media","media":{"payload":"%%%"}}"#,
                &mut audio
            ),
            Err(BotMessageError::BadPayload)
        );
        assert_eq!(
            read_text(f, r#"{"event":"media"}"#, &mut audio),
            Err(BotMessageError::BadPayload)
        );
        let long = format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            B64.encode(vec![0u8; MAX_BOT_AUDIO + 3])
        );
        assert_eq!(
            read_text(f, &long, &mut audio),
            Err(BotMessageError::TooLong)
        );
        assert_eq!(
            read_text(BridgeFormat::L16 { rate: 16_000 }, &media, &mut audio),
            Err(BotMessageError::AudioInText)
        );
    }

    #[test]
    fn l16_frames_both_ways() {
        let mut s = BridgeStream::new(BridgeFormat::L16 { rate: 16_000 }, "S1".into(), "C1");
        assert_eq!(s.connected(), None);
        let start = parse(&s.start(&Map::new()));
        assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 16_000);
        assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/l16");
        let mut bytes = Vec::new();
        write_l16(&[1, -2, 0x1234], &mut bytes);
        assert_eq!(bytes, [1, 0, 0xfe, 0xff, 0x34, 0x12]);
        let mut pcm = Vec::new();
        read_l16(&bytes, &mut pcm).unwrap();
        assert_eq!(pcm, [1, -2, 0x1234]);
        read_l16(&bytes[..5], &mut pcm).unwrap();
        assert_eq!(pcm, [1, -2], "an odd byte is dropped");
        assert_eq!(
            read_l16(&vec![0; MAX_BOT_AUDIO + 2], &mut pcm),
            Err(BotMessageError::TooLong)
        );
    }
}
