//! What the daemon tells subscribed signaling clients, as a typed value; the control edge
//! serializes it (`{"event": "call.connected", "call_id": ..., ...}`).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

use super::session::CallStats;
use super::track::MediaKind;

/// An event notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    /// A call was set up; `local` is its media address.
    #[serde(rename = "call.started")]
    CallStarted {
        /// The call.
        call_id: Arc<str>,
        /// The media socket's address.
        local: SocketAddr,
    },
    /// The remote was confirmed for the first time.
    #[serde(rename = "call.connected")]
    Connected {
        /// The call.
        call_id: Arc<str>,
        /// The remote address.
        remote: SocketAddr,
        /// What confirmed it: `stun` or `media`.
        via: &'static str,
    },
    /// The remote moved.
    #[serde(rename = "call.remote_changed")]
    RemoteChanged {
        /// The call.
        call_id: Arc<str>,
        /// The previous remote.
        from: Option<SocketAddr>,
        /// The new remote.
        remote: SocketAddr,
        /// Why: `stun` or `media`.
        via: &'static str,
    },
    /// No inbound media for the configured time.
    #[serde(rename = "call.media_timeout")]
    MediaTimeout {
        /// The call.
        call_id: Arc<str>,
        /// Seconds since the last inbound media.
        silent_s: u64,
        /// Whether the longer limit (peer muted or on hold) applied.
        peer_muted: bool,
    },
    /// What the peer's signaling said about its media.
    #[serde(rename = "call.peer_state")]
    PeerState {
        /// The call.
        call_id: Arc<str>,
        /// The peer muted (or unmuted) its audio.
        #[serde(skip_serializing_if = "Option::is_none")]
        muted: Option<bool>,
        /// The peer turned its video on or off.
        #[serde(skip_serializing_if = "Option::is_none")]
        video: Option<bool>,
    },
    /// Video was turned back on: the encoder feeding the source must send a keyframe.
    #[serde(rename = "track.keyframe_needed")]
    KeyframeNeeded {
        /// The call.
        call_id: Arc<str>,
        /// The track.
        media: MediaKind,
    },
    /// The peer pressed a key (RFC 4733 telephone-event), told once per digit.
    #[serde(rename = "call.dtmf")]
    Dtmf {
        /// The call.
        call_id: Arc<str>,
        /// The digit: 0–9, `*`, `#`, A–D.
        digit: char,
    },
    /// The bot's WebSocket closed or failed (not when srtpd closed it).
    #[serde(rename = "call.bridge_closed")]
    BridgeClosed {
        /// The call.
        call_id: Arc<str>,
        /// Why.
        reason: String,
    },
    /// A played clip reached its end.
    #[serde(rename = "track.source_ended")]
    SourceEnded {
        /// The call.
        call_id: Arc<str>,
        /// The track.
        media: MediaKind,
    },
    /// The call ended.
    #[serde(rename = "call.ended")]
    CallEnded {
        /// The call.
        call_id: Arc<str>,
        /// Why (the terminate's reason, `shutdown`, ...).
        reason: String,
        /// The final statistics.
        stats: Box<CallStats>,
    },
}

impl Event {
    /// The call the event is about.
    pub fn call_id(&self) -> &str {
        match self {
            Event::CallStarted { call_id, .. }
            | Event::Connected { call_id, .. }
            | Event::RemoteChanged { call_id, .. }
            | Event::MediaTimeout { call_id, .. }
            | Event::PeerState { call_id, .. }
            | Event::KeyframeNeeded { call_id, .. }
            | Event::Dtmf { call_id, .. }
            | Event::BridgeClosed { call_id, .. }
            | Event::SourceEnded { call_id, .. }
            | Event::CallEnded { call_id, .. } => call_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_protocol_names_it() {
        let e = Event::Connected {
            call_id: "C".into(),
            remote: "127.0.0.1:9".parse().unwrap(),
            via: "stun",
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event": "call.connected", "call_id": "C", "remote": "127.0.0.1:9", "via": "stun"})
        );
        let p = Event::PeerState {
            call_id: "C".into(),
            muted: Some(true),
            video: None,
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"event": "call.peer_state", "call_id": "C", "muted": true})
        );
    }
}
