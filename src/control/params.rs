//! Parameters of the control methods, as the contract in docs/PROTOCOL.md gives them: what
//! a request may say, checked for form by serde (the daemon's setup checks the rest).

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::call::MediaKind;

/// Which side of the call we are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// We placed the call.
    Caller,
    /// We answered it.
    #[default]
    Callee,
}

/// `call.start`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartParams {
    /// The call id.
    pub call_id: String,
    /// The JID that created the call.
    #[serde(default)]
    pub call_creator: Option<String>,
    /// Caller or callee.
    #[serde(default)]
    pub role: Role,
    /// Our device id (required for wa-e2e).
    #[serde(rename = "self", default)]
    pub self_id: Option<String>,
    /// The peer's device id (required for wa-e2e).
    #[serde(default)]
    pub peer: Option<String>,
    /// Bind address, with or without a port.
    #[serde(default)]
    pub bind: Option<String>,
    /// The peer's candidates.
    #[serde(default)]
    pub candidates: Vec<CandidateParams>,
    /// Keying material.
    pub keying: KeyingParams,
    /// The audio track.
    #[serde(default)]
    pub audio: Option<TrackParamsIn>,
    /// The video track.
    #[serde(default)]
    pub video: Option<TrackParamsIn>,
    /// What muted audio sends (default: `calls.mute_mode`).
    #[serde(default)]
    pub mute_mode: Option<crate::call::MuteMode>,
    /// A voice bot to bridge the call's audio to.
    #[serde(default)]
    pub bridge: Option<BridgeParams>,
}

/// One candidate.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateParams {
    /// Address.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
    /// Preference; higher first.
    #[serde(default)]
    pub priority: u32,
}

/// Keying material, by scheme.
#[derive(Clone, Deserialize)]
#[serde(tag = "scheme", deny_unknown_fields)]
pub enum KeyingParams {
    /// RFC 4568 SDES.
    #[serde(rename = "sdes")]
    Sdes {
        /// Crypto suite name.
        profile: String,
        /// Our base64 key‖salt.
        tx: Zeroizing<String>,
        /// The peer's base64 key‖salt.
        rx: Zeroizing<String>,
    },
    /// The wa-e2e call key.
    #[serde(rename = "wa-e2e")]
    WaE2e {
        /// Base64 of the 32-byte call key.
        #[serde(default)]
        call_key: Option<Zeroizing<String>>,
        /// Base64 of the decrypted enc payload.
        #[serde(default)]
        enc_plaintext: Option<Zeroizing<String>>,
        /// RTP tag length (default 4).
        #[serde(default)]
        tag_len: Option<usize>,
    },
}

impl std::fmt::Debug for KeyingParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyingParams::Sdes { profile, .. } => write!(f, "Sdes {{ {profile}, keys redacted }}"),
            KeyingParams::WaE2e { .. } => f.write_str("WaE2e { key redacted }"),
        }
    }
}

/// A track's parameters.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackParamsIn {
    /// RTP payload type.
    pub payload_type: u8,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Packet time, ms.
    #[serde(default = "default_ptime")]
    pub ptime_ms: u32,
    /// The audio codec (default by payload type: 0 PCMU, 8 PCMA, otherwise Opus).
    #[serde(default)]
    pub codec: Option<crate::media::codec::CodecKind>,
    /// The payload type of the peer's telephone-events (audio only; default 101 unless a
    /// track uses 101).
    #[serde(default)]
    pub dtmf_payload_type: Option<u8>,
    /// Our SSRC for the track (default: derived by wa-e2e keying, else random).
    #[serde(default)]
    pub ssrc: Option<u32>,
    /// Where outgoing media comes from.
    #[serde(default)]
    pub source: SourceParams,
    /// Where incoming media goes.
    #[serde(default)]
    pub sink: SinkParams,
}

fn default_ptime() -> u32 {
    20
}

/// A track's source.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceParams {
    /// Nothing is sent.
    #[default]
    None,
    /// Plain RTP arrives on a local UDP port.
    Rtp {
        /// Where to listen (default: a port of the track's own on 127.0.0.1).
        #[serde(default)]
        listen: Option<SocketAddr>,
        /// The producer's SSRC: the producer sends to the worker's shared producer port
        /// instead, which tells producers apart by SSRC.
        #[serde(default)]
        ssrc: Option<u32>,
    },
    /// Silence in the track's codec at the packet time (keeps relays and NAT bindings open).
    Silence,
    /// An Ogg Opus or WAV file played out at its own pace, in the track's codec.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Start again at the end.
        #[serde(default, rename = "loop")]
        looping: bool,
    },
}

/// A track's sink.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkParams {
    /// Received media is counted and discarded.
    #[default]
    None,
    /// Decrypted RTP goes to a local address.
    Rtp {
        /// The address.
        forward: SocketAddr,
    },
    /// Received Opus is recorded to an Ogg Opus file.
    File {
        /// The file: created; an existing one is refused unless `overwrite`.
        path: std::path::PathBuf,
        /// Replace the file if it exists.
        #[serde(default)]
        overwrite: bool,
    },
}

impl SourceParams {
    /// Reads the short form `none`, `rtp` or `rtp:IP:PORT` (config files and srtpctl).
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            None if spec == "none" => Ok(SourceParams::None),
            None if spec == "rtp" => Ok(SourceParams::Rtp {
                listen: None,
                ssrc: None,
            }),
            None if spec == "silence" => Ok(SourceParams::Silence),
            Some(("rtp", addr)) => addr
                .parse()
                .map(|a| SourceParams::Rtp {
                    listen: Some(a),
                    ssrc: None,
                })
                .map_err(|_| format!("{addr:?} is not IP:PORT")),
            Some(("file", path)) => Ok(SourceParams::File {
                path: path.into(),
                looping: false,
            }),
            _ => Err(format!(
                "{spec:?}: expected none, rtp, rtp:IP:PORT or file:PATH"
            )),
        }
    }
}

impl SinkParams {
    /// Reads the short form `none` or `rtp:IP:PORT` (config files and srtpctl).
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            None if spec == "none" => Ok(SinkParams::None),
            Some(("rtp", addr)) => addr
                .parse()
                .map(|forward| SinkParams::Rtp { forward })
                .map_err(|_| format!("{addr:?} is not IP:PORT")),
            Some(("file", path)) => Ok(SinkParams::File {
                path: path.into(),
                overwrite: false,
            }),
            _ => Err(format!("{spec:?}: expected none, rtp:IP:PORT or file:PATH")),
        }
    }
}

/// `{"call_id"}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallIdParams {
    /// The call id.
    pub call_id: String,
}

/// `call.stanza`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StanzaParams {
    /// The stanza as XML.
    #[serde(default)]
    pub xml: Option<String>,
    /// The stanza as a JSON node.
    #[serde(default)]
    pub node: Option<serde_json::Value>,
    /// Our device id: decides whose stanza it is.
    #[serde(rename = "self")]
    pub self_id: String,
    /// Base64 of the decrypted enc payload (wa-e2e).
    #[serde(default)]
    pub enc_plaintext: Option<Zeroizing<String>>,
    /// Base64 of the call key (wa-e2e).
    #[serde(default)]
    pub call_key: Option<Zeroizing<String>>,
    /// Keying instead of wa-e2e (e.g. SDES).
    #[serde(default)]
    pub keying: Option<KeyingParams>,
    /// Bind address.
    #[serde(default)]
    pub bind: Option<String>,
    /// Audio track instead of the `[stanza]` defaults.
    #[serde(default)]
    pub audio: Option<TrackParamsIn>,
    /// Video track instead of the `[stanza]` defaults.
    #[serde(default)]
    pub video: Option<TrackParamsIn>,
}

/// `call.mute`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteParams {
    /// The call id.
    pub call_id: String,
    /// Which track.
    pub media: MediaKind,
    /// Muted or not.
    pub muted: bool,
}

/// A bot bridge: where the bot's WebSocket server is and how it speaks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeParams {
    /// `ws://HOST:PORT/PATH` (none: no bridge, or in `call.bridge`, detach).
    pub url: Option<String>,
    /// The dialect.
    #[serde(default)]
    pub format: BridgeFormatParam,
    /// The L16 dialect's rate (8,000, 16,000, 24,000 or 48,000; default 16,000).
    #[serde(default)]
    pub rate: Option<u32>,
    /// Twilio's `customParameters` (and the L16 `start`'s).
    #[serde(default)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// What happens to the call when the bot's WebSocket closes or fails.
    #[serde(default)]
    pub on_close: OnBridgeClose,
}

/// A bridge's dialect.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BridgeFormatParam {
    /// Twilio Media Streams.
    #[default]
    Twilio,
    /// Binary 16-bit PCM frames.
    L16,
}

/// What a call does when its bot goes away.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnBridgeClose {
    /// Goes on without the bot (its own source, or silence).
    #[default]
    Continue,
    /// Ends, with reason `bridge_closed`.
    Terminate,
}

/// `call.bridge`: attaches a bridge to a running call, or with `"url": null` detaches it:
/// `call_id` and the fields of [`BridgeParams`].
#[derive(Clone, Debug)]
pub struct CallBridgeParams {
    /// The call id.
    pub call_id: String,
    /// The bridge (no `url`: detach).
    pub bridge: BridgeParams,
}

impl<'de> Deserialize<'de> for CallBridgeParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let call_id = match fields.remove("call_id") {
            Some(serde_json::Value::String(id)) => id,
            Some(_) => return Err(D::Error::custom("call_id: a string is needed")),
            None => return Err(D::Error::missing_field("call_id")),
        };
        let bridge = BridgeParams::deserialize(serde_json::Value::Object(fields))
            .map_err(D::Error::custom)?;
        Ok(CallBridgeParams { call_id, bridge })
    }
}

/// `call.dtmf`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtmfParams {
    /// The call id.
    pub call_id: String,
    /// The digits: 0–9, `*`, `#`, A–D.
    pub digits: String,
    /// Each tone's length, ms.
    #[serde(default = "default_dtmf_ms")]
    pub duration_ms: u32,
}

fn default_dtmf_ms() -> u32 {
    100
}

/// `call.video`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoParams {
    /// The call id.
    pub call_id: String,
    /// Video on or off.
    pub enabled: bool,
}

/// `call.peer_state`: what the peer's signaling said about its media.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerStateParams {
    /// The call id.
    pub call_id: String,
    /// The peer muted its audio.
    #[serde(default)]
    pub muted: Option<bool>,
    /// The peer put the call on hold (treated like muted for the media timeout).
    #[serde(default)]
    pub hold: Option<bool>,
    /// The peer's video is on.
    #[serde(default)]
    pub video: Option<bool>,
}

/// `call.play`: switch a track's source to an Ogg Opus file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayParams {
    /// The call id.
    pub call_id: String,
    /// Which track (default audio).
    #[serde(default = "audio")]
    pub media: crate::call::MediaKind,
    /// The file.
    pub path: std::path::PathBuf,
    /// Start again at the end.
    #[serde(default, rename = "loop")]
    pub looping: bool,
}

fn audio() -> crate::call::MediaKind {
    crate::call::MediaKind::Audio
}

/// `call.record`: start (with a path) or stop (path null) recording a track.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// The call id.
    pub call_id: String,
    /// Which track (default audio).
    #[serde(default = "audio")]
    pub media: crate::call::MediaKind,
    /// The file, or null to stop.
    pub path: Option<std::path::PathBuf>,
    /// Replace the file if it exists (an existing file is refused otherwise).
    #[serde(default)]
    pub overwrite: bool,
}

/// `call.terminate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateParams {
    /// The call id.
    pub call_id: String,
    /// Why (reported in `call.ended`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The parameters of a method that takes none (`call.list`, `daemon.status`,
/// `daemon.shutdown`, `events.subscribe`): any field given is refused.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}
