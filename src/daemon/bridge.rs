//! The bot bridge's I/O: srtpd connects out to the bot's WebSocket server (as Twilio does), a
//! bounded queue carries the worker's messages to it, and what the bot sends is read, checked
//! and handed to the worker. A bot that reads slowly loses its oldest audio (counted), never
//! the call's time; one that goes away raises `call.bridge_closed`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::driver::WorkerHandle;
use super::error::DaemonError;
use crate::call::CallNo;
use crate::call::bridge::{BridgeInput, BridgeMessage, BridgeOutlet};
use crate::control::params::{BridgeFormatParam, OnBridgeClose};
use crate::media::bridge_frame::{
    BotMessageError, BridgeFormat, FromBot, MEDIA_PREFIX, read_l16, read_text,
};

/// Messages that may wait for a slow bot: 5 s of 20 ms frames.
const QUEUE_MESSAGES: usize = 250;
/// How long connecting to the bot may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write to the bot may take before the bot counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message the bot may send (a second of L16 at 48 kHz, base64 in JSON).
const MAX_MESSAGE: usize = 256 * 1024;
/// Bytes read from the bot at a time. tungstenite zeroes this much before every read (128 KiB
/// by default: 5% of the daemon's CPU with 100 bridged calls); a bot's 20 ms message is a few
/// hundred bytes (µ-law in JSON) to 2 KiB (L16 at 48 kHz), and larger ones take more reads.
const READ_BUFFER: usize = 8 * 1024;
/// The most bytes of `parameters` a bridge takes.
const MAX_PARAMETERS: usize = 4 * 1024;

/// Checks a bridge's `url`, `format` and `rate` (fields named under `field`, or at the top
/// when it is empty), giving the wire format.
pub fn check(
    field: &str,
    url: &str,
    format: BridgeFormatParam,
    rate: Option<u32>,
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> Result<BridgeFormat, DaemonError> {
    let invalid = |name: &str, why: String| match field {
        "" => DaemonError::invalid(name, why),
        _ => DaemonError::invalid(format!("{field}.{name}"), why),
    };
    let rest = url.strip_prefix("ws://").ok_or_else(|| {
        invalid(
            "url",
            format!("{url:?}: a ws:// URL is needed (wss:// is not supported yet)"),
        )
    })?;
    if rest.is_empty()
        || rest.starts_with('/')
        || url.len() > 2048
        || url.chars().any(char::is_control)
    {
        return Err(invalid("url", format!("{url:?}: no host")));
    }
    if serde_json::to_string(parameters).map_or(0, |s| s.len()) > MAX_PARAMETERS {
        return Err(invalid(
            "parameters",
            format!("more than {MAX_PARAMETERS} bytes"),
        ));
    }
    match (format, rate) {
        (BridgeFormatParam::Twilio, None) => Ok(BridgeFormat::Twilio),
        (BridgeFormatParam::Twilio, Some(_)) => Err(invalid(
            "rate",
            "the twilio format is 8 kHz µ-law; rate is for l16".to_owned(),
        )),
        (BridgeFormatParam::L16, rate) => {
            let rate = rate.unwrap_or(16_000);
            if [8_000, 16_000, 24_000, 48_000].contains(&rate) {
                Ok(BridgeFormat::L16 { rate })
            } else {
                Err(invalid(
                    "rate",
                    format!("{rate}: 8000, 16000, 24000 or 48000"),
                ))
            }
        }
    }
}

/// A new stream id, as Twilio's look (`MZ` and 32 hex digits).
pub fn stream_sid() -> String {
    format!("MZ{:032x}", rand::random::<u128>())
}

/// The worker's messages on their way to the bot.
#[derive(Default)]
pub struct BridgeQueue {
    messages: Mutex<VecDeque<BridgeMessage>>,
    ready: Notify,
    /// Audio messages dropped because the bot read too slowly.
    pub lost: AtomicU64,
}

impl BridgeOutlet for BridgeQueue {
    fn send(&self, message: BridgeMessage) {
        let mut q = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= QUEUE_MESSAGES {
            // The oldest audio goes; events (start, marks, dtmf, stop) stay.
            let audio = q.iter().position(|m| match m {
                BridgeMessage::Binary(_) => true,
                BridgeMessage::Text(t) => t.starts_with(MEDIA_PREFIX),
                BridgeMessage::Stop(_) => false,
            });
            match audio {
                Some(i) => {
                    q.remove(i);
                }
                None => {
                    q.pop_front();
                }
            }
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(message);
        drop(q);
        self.ready.notify_one();
    }
}

impl BridgeQueue {
    fn take(&self, into: &mut Vec<BridgeMessage>) {
        let mut q = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        into.extend(q.drain(..));
    }
}

/// How a bridge's task ended.
#[derive(Debug)]
pub enum BridgeEnd {
    /// srtpd closed it (the call ended, or the bridge was detached or replaced).
    Closed,
    /// The bot went away, or could not be reached.
    Lost(String),
}

/// Runs a bridge: connects to `url`, sends what `queue` carries, and hands what the bot sends
/// to call `no` on `worker`, until srtpd closes the stream or the bot goes away.
pub async fn run(
    url: String,
    format: BridgeFormat,
    queue: Arc<BridgeQueue>,
    worker: WorkerHandle,
    no: CallNo,
) -> BridgeEnd {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false);
    let ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return BridgeEnd::Lost(format!("cannot connect to {url}: {e}")),
        Err(_) => return BridgeEnd::Lost(format!("cannot connect to {url}: timed out")),
    };
    let (mut write, mut read) = ws.split();
    let mut batch = Vec::new();
    let mut audio = Vec::new();
    let mut pcm = Vec::new();
    let mut refused = 0u64;
    loop {
        tokio::select! {
            () = queue.ready.notified() => {
                queue.take(&mut batch);
                for m in batch.drain(..) {
                    let m = match m {
                        BridgeMessage::Text(t) => Message::text(t),
                        BridgeMessage::Binary(b) => Message::binary(b),
                        BridgeMessage::Stop(t) => {
                            // `stop` and the close go out together: a bot that closes once
                            // told `stop` is answered, not read as gone.
                            let last = async {
                                write.send(Message::text(t)).await?;
                                write.close().await
                            };
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, last).await;
                            return BridgeEnd::Closed;
                        }
                    };
                    match tokio::time::timeout(WRITE_TIMEOUT, write.send(m)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return BridgeEnd::Lost(format!("writing to the bot: {e}")),
                        Err(_) => return BridgeEnd::Lost("the bot stopped reading".to_owned()),
                    }
                }
            }
            m = read.next() => {
                let input = match m {
                    Some(Ok(Message::Text(t))) => match read_text(format, t.as_str(), &mut audio) {
                        Ok(FromBot::Media) => Some(BridgeInput::Ulaw(std::mem::take(&mut audio))),
                        Ok(FromBot::Mark(name)) => Some(BridgeInput::Mark(name)),
                        Ok(FromBot::Clear) => Some(BridgeInput::Clear),
                        Ok(FromBot::Ignored) => None,
                        Err(e) => {
                            refused += 1;
                            log_refused(no, &e, refused);
                            None
                        }
                    },
                    Some(Ok(Message::Binary(b))) => match format {
                        BridgeFormat::L16 { .. } => match read_l16(&b, &mut pcm) {
                            Ok(()) => Some(BridgeInput::Pcm(std::mem::take(&mut pcm))),
                            Err(e) => {
                                refused += 1;
                                log_refused(no, &e, refused);
                                None
                            }
                        },
                        BridgeFormat::Twilio => {
                            refused += 1;
                            log_refused(no, &BotMessageError::Malformed("a binary frame".into()), refused);
                            None
                        }
                    },
                    Some(Ok(Message::Close(_))) | None => {
                        return BridgeEnd::Lost("the bot closed the WebSocket".to_owned());
                    }
                    Some(Ok(_)) => None,
                    Some(Err(e)) => return BridgeEnd::Lost(format!("reading from the bot: {e}")),
                };
                if let Some(input) = input
                    && worker
                        .tell(move |ep, now| {
                            let _ = ep.bridge_input(no, input, now);
                        })
                        .await
                        .is_err()
                {
                    return BridgeEnd::Closed;
                }
            }
        }
    }
}

/// Logs a refused message from the bot: the first, then every hundredth.
fn log_refused(no: CallNo, e: &BotMessageError, count: u64) {
    if count == 1 || count % 100 == 0 {
        tracing::warn!(
            call = no.0,
            refused = count,
            "a bot's message was refused: {e}"
        );
    }
}

/// Where the bridge of a call ended, for the daemon: what to do next.
pub fn on_end(end: &BridgeEnd, on_close: OnBridgeClose) -> Option<(String, bool)> {
    match end {
        BridgeEnd::Closed => None,
        BridgeEnd::Lost(reason) => Some((reason.clone(), on_close == OnBridgeClose::Terminate)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_formats_and_rates_are_checked() {
        let none = serde_json::Map::new();
        let ok = |url, format, rate| check("bridge", url, format, rate, &none);
        assert_eq!(
            ok("ws://127.0.0.1:8080/bot", BridgeFormatParam::Twilio, None).unwrap(),
            BridgeFormat::Twilio
        );
        assert_eq!(
            ok("ws://h/x", BridgeFormatParam::L16, None).unwrap(),
            BridgeFormat::L16 { rate: 16_000 }
        );
        for (url, format, rate, field) in [
            ("wss://h/x", BridgeFormatParam::Twilio, None, "bridge.url"),
            ("http://h/x", BridgeFormatParam::Twilio, None, "bridge.url"),
            ("ws:///x", BridgeFormatParam::Twilio, None, "bridge.url"),
            ("ws://h/\nx", BridgeFormatParam::Twilio, None, "bridge.url"),
            (
                "ws://h/x",
                BridgeFormatParam::Twilio,
                Some(8000),
                "bridge.rate",
            ),
            (
                "ws://h/x",
                BridgeFormatParam::L16,
                Some(44_100),
                "bridge.rate",
            ),
        ] {
            match ok(url, format, rate) {
                Err(DaemonError::InvalidParam { field: f, .. }) => assert_eq!(f, field, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        let mut big = serde_json::Map::new();
        big.insert("k".into(), serde_json::json!("v".repeat(5000)));
        assert!(check("bridge", "ws://h/", BridgeFormatParam::Twilio, None, &big).is_err());
        assert!(stream_sid().starts_with("MZ") && stream_sid().len() == 34);
    }

    #[test]
    fn a_full_queue_drops_its_oldest_audio_and_keeps_events() {
        let q = BridgeQueue::default();
        q.send(BridgeMessage::Text(r#"{"event":"start"}"#.into()));
        for _ in 0..QUEUE_MESSAGES + 10 {
            q.send(BridgeMessage::Binary(vec![0; 4]));
        }
        let mut out = Vec::new();
        q.take(&mut out);
        assert_eq!(out.len(), QUEUE_MESSAGES);
        assert_eq!(out[0], BridgeMessage::Text(r#"{"event":"start"}"#.into()));
        assert_eq!(q.lost.load(Ordering::Relaxed), 11);
    }
}
