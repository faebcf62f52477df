//! Setup: a `call.start` request → what the call needs to start, checked: keys, the media
//! session's setup, and what each track's source and sink are to be. Pure: no sockets, no
//! files, no clock; placement opens what the plan names.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::error::DaemonError;
use crate::call::{
    CallSetup, CallTimers, Candidate, MediaKind, RecordingFormat, RemotePolicy, TrackParams,
    TrackSetup,
};
use crate::config::Config;
use crate::control::params::{KeyingParams, SinkParams, SourceParams, StartParams, TrackParamsIn};
use crate::keying::wa_e2e::{self, CallKey, SsrcSlot};
use crate::keying::{CallKeys, KeyingError, sdes};
use crate::media::codec::CodecKind;
use crate::rtp::Ssrc;
use crate::srtp::SrtpOptions;

/// What `call.start` answers: the addresses a peer and the local producers send to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Started {
    /// The call.
    pub call_id: String,
    /// Its media socket's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddr>,
    /// The audio track's local addresses, if it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<TrackAddrs>,
    /// The video track's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<TrackAddrs>,
}

/// A track's local addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TrackAddrs {
    /// Where its producer sends plain RTP.
    pub source: SocketAddr,
}

/// Where a track's outgoing media is to come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourcePlan {
    /// Nothing.
    None,
    /// A producer on a port of the track's own (at `listen`, or any loopback port).
    Rtp {
        /// The requested address.
        listen: Option<SocketAddr>,
    },
    /// A producer on the worker's shared producer port, sending SSRC `ssrc`.
    SharedRtp {
        /// The producer's SSRC.
        ssrc: Ssrc,
    },
    /// Silence in the track's codec.
    Silence,
    /// An Ogg Opus or WAV file.
    File {
        /// The file.
        path: PathBuf,
        /// Start again at the end.
        looping: bool,
    },
}

/// Where a track's received media is to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkPlan {
    /// Nowhere (counted).
    None,
    /// Decrypted RTP to this address.
    Rtp(SocketAddr),
    /// A recording.
    File {
        /// The file, resolved.
        path: PathBuf,
        /// What it holds (by its name).
        format: RecordingFormat,
        /// Whether an existing file is replaced.
        overwrite: bool,
    },
}

/// A track's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackPlan {
    /// Its source.
    pub source: SourcePlan,
    /// Its sink.
    pub sink: SinkPlan,
    /// Its RTP parameters (for clips and recordings).
    pub params: TrackParams,
}

/// Everything a checked request says a call needs.
#[derive(Debug)]
pub struct CallPlan {
    /// The media session's setup.
    pub setup: CallSetup,
    /// The wa-e2e call key and tag length, if wa-e2e keyed.
    pub call_key: Option<(CallKey, Option<usize>)>,
    /// The address and port the request asked to bind (port 0: any).
    pub bind: Option<(IpAddr, u16)>,
    /// Whether the call speaks IPv6 to its peer.
    pub ipv6: bool,
    /// The audio track.
    pub audio: Option<TrackPlan>,
    /// The video track.
    pub video: Option<TrackPlan>,
}

/// Where a file named by a request is: an absolute path as given; a relative one inside
/// `media.files_dir` (the daemon's working directory when that is empty), and never above it.
pub fn resolve_file(config: &Config, path: &std::path::Path) -> Result<PathBuf, String> {
    use std::path::Component;
    if path.as_os_str().is_empty() {
        return Err("must not be empty".into());
    }
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "{}: a relative path may not leave media.files_dir (no \"..\")",
            path.display()
        ));
    }
    Ok(config.media.files_dir.join(path))
}

/// Parses a bind parameter: an address with or without a port.
pub fn parse_bind(text: &str) -> Result<(IpAddr, u16), DaemonError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr.ip(), addr.port()));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().map(|ip| (ip, 0)).map_err(|_| {
        DaemonError::invalid("bind", format!("{text:?} is not an IP address or IP:port"))
    })
}

/// Checks candidates: within `max`, all in the call's address family (`family`: IPv6 or not,
/// and what decided it; when `None`, the first candidate's), and acceptable to `policy` (no
/// port 0, no unspecified, multicast or broadcast address, none of srtpd's own sockets, the
/// allow and deny lists). Errors name `field[i]`. The one check of every path that adds
/// candidates to a call.
pub fn check_candidates(
    field: &str,
    candidates: &[SocketAddr],
    family: Option<(bool, &str)>,
    policy: &RemotePolicy,
    max: usize,
) -> Result<(), DaemonError> {
    if candidates.len() > max {
        return Err(DaemonError::invalid(
            field,
            format!(
                "{} candidates; at most {max} are accepted (calls.max_candidates)",
                candidates.len()
            ),
        ));
    }
    let Some((ipv6, decided_by)) = family.or_else(|| {
        candidates
            .first()
            .map(|c| (c.is_ipv6(), "the first candidate"))
    }) else {
        return Ok(());
    };
    for (i, c) in candidates.iter().enumerate() {
        if c.is_ipv6() != ipv6 {
            return Err(DaemonError::invalid(
                format!("{field}[{i}].ip"),
                format!("{} is not in the address family of {decided_by}", c.ip()),
            ));
        }
        policy
            .check_remote(*c)
            .map_err(|e| DaemonError::invalid(format!("{field}[{i}]"), e))?;
    }
    Ok(())
}

/// Checks a `call.start` request against `config` and `policy`, and plans the call
/// (`ringing`: offered by a stanza, no media until answered).
pub fn plan(
    p: &StartParams,
    config: &Config,
    policy: &RemotePolicy,
    ringing: bool,
) -> Result<CallPlan, DaemonError> {
    crate::call::check_call_id(&p.call_id).map_err(|e| DaemonError::invalid("call_id", e))?;
    if p.audio.is_none() && p.video.is_none() {
        return Err(DaemonError::invalid(
            "audio",
            "a call needs an audio or a video track",
        ));
    }
    let bind = p.bind.as_deref().map(parse_bind).transpose()?;
    let bind_ip = bind.map(|(ip, _)| format!("the bind address {ip}"));
    let family = match (&bind, &bind_ip) {
        (Some((ip, _)), Some(text)) => Some((ip.is_ipv6(), text.as_str())),
        _ => None,
    };
    let addrs: Vec<SocketAddr> = p
        .candidates
        .iter()
        .map(|c| SocketAddr::new(c.ip, c.port))
        .collect();
    check_candidates(
        "candidates",
        &addrs,
        family,
        policy,
        config.calls.max_candidates,
    )?;
    let ipv6 = match (bind, addrs.first()) {
        (Some((ip, _)), _) => ip.is_ipv6(),
        (None, Some(c)) => c.is_ipv6(),
        (None, None) => false,
    };
    let (keys, call_key) = call_keys(p)?;
    let tag_len = keys.rtp_tag_len;
    let track = |kind: MediaKind| -> Result<Option<(TrackSetup, TrackPlan)>, DaemonError> {
        let (name, t) = match kind {
            MediaKind::Audio => ("audio", &p.audio),
            MediaKind::Video => ("video", &p.video),
        };
        let Some(t) = t else { return Ok(None) };
        crate::rtp::check_payload_type(t.payload_type)
            .map_err(|e| DaemonError::invalid(format!("{name}.payload_type"), e))?;
        if t.clock_rate == 0 {
            return Err(DaemonError::invalid(
                format!("{name}.clock_rate"),
                "must be at least 1",
            ));
        }
        let codec = match kind {
            MediaKind::Audio => Some(audio_codec(t, name)?),
            MediaKind::Video if t.codec.is_some() => {
                return Err(DaemonError::invalid(
                    format!("{name}.codec"),
                    "a codec is named for audio only",
                ));
            }
            MediaKind::Video => None,
        };
        let source = match &t.source {
            SourceParams::None => SourcePlan::None,
            SourceParams::Rtp {
                listen: Some(_),
                ssrc: Some(_),
            } => {
                return Err(DaemonError::invalid(
                    format!("{name}.source"),
                    "give listen (a port of the track's own) or ssrc (the shared producer port), not both",
                ));
            }
            SourceParams::Rtp { listen, ssrc: None } => SourcePlan::Rtp { listen: *listen },
            SourceParams::Rtp {
                ssrc: Some(ssrc), ..
            } => SourcePlan::SharedRtp { ssrc: Ssrc(*ssrc) },
            SourceParams::Silence => SourcePlan::Silence,
            SourceParams::File { path, looping } => SourcePlan::File {
                path: resolve_file(config, path)
                    .map_err(|e| DaemonError::invalid(format!("{name}.source.path"), e))?,
                looping: *looping,
            },
        };
        let sink = match &t.sink {
            SinkParams::None => SinkPlan::None,
            SinkParams::Rtp { forward } => {
                if forward.port() == 0 || forward.ip().is_unspecified() {
                    return Err(DaemonError::invalid(
                        format!("{name}.sink.forward"),
                        format!("{forward}: no address to send to"),
                    ));
                }
                SinkPlan::Rtp(*forward)
            }
            SinkParams::File { path, overwrite } => {
                let field = || format!("{name}.sink.path");
                let path =
                    resolve_file(config, path).map_err(|e| DaemonError::invalid(field(), e))?;
                let format = RecordingFormat::for_path(&path);
                format
                    .check(codec)
                    .map_err(|e| DaemonError::invalid(field(), e))?;
                SinkPlan::File {
                    path,
                    format,
                    overwrite: *overwrite,
                }
            }
        };
        let params = TrackParams {
            payload_type: t.payload_type,
            clock_rate: t.clock_rate,
            ptime_ms: t.ptime_ms,
            dtmf_payload_type: dtmf_payload_type(p, kind, name)?,
            codec,
        };
        Ok(Some((
            TrackSetup {
                params,
                ssrc: ssrc(p, kind),
            },
            TrackPlan {
                source,
                sink,
                params,
            },
        )))
    };
    let audio = track(MediaKind::Audio)?;
    let video = track(MediaKind::Video)?;
    let c = &config.calls;
    let setup = CallSetup {
        call_id: p.call_id.clone(),
        keys,
        srtp: SrtpOptions {
            replay_window: config.srtp.replay_window,
            ..SrtpOptions::default()
        },
        candidates: p
            .candidates
            .iter()
            .map(|c| Candidate {
                addr: SocketAddr::new(c.ip, c.port),
                priority: c.priority,
            })
            .collect(),
        audio: audio.as_ref().map(|t| t.0),
        video: video.as_ref().map(|t| t.0),
        timers: CallTimers {
            check_timeout: Duration::from_millis(c.candidate_check_timeout_ms),
            keepalive: Duration::from_millis(c.keepalive_interval_ms),
            rtcp_interval: Duration::from_millis(c.rtcp_interval_ms),
            media_timeout: Duration::from_secs(c.media_timeout_s),
            media_timeout_held: Duration::from_secs(c.media_timeout_held_s),
        },
        ringing,
        mute_mode: p.mute_mode.unwrap_or(c.mute_mode),
    };
    Ok(CallPlan {
        setup,
        call_key: call_key.map(|k| (k, tag_len)),
        bind,
        ipv6,
        audio: audio.map(|t| t.1),
        video: video.map(|t| t.1),
    })
}

/// An audio track's codec: the one named, else the one its payload type implies. G.711's
/// RTP clock is its sample rate (8 kHz); Opus' RTP clock is 48 kHz by RFC 7587, but some
/// signaling (WhatsApp's 16 kHz) stamps it otherwise, so any clock is taken. The packet time
/// is whole 10 ms steps up to 120 ms.
fn audio_codec(t: &TrackParamsIn, name: &str) -> Result<CodecKind, DaemonError> {
    let codec = t
        .codec
        .unwrap_or_else(|| CodecKind::for_payload_type(t.payload_type));
    if codec != CodecKind::Opus && t.clock_rate != codec.clock_rate() {
        return Err(DaemonError::invalid(
            format!("{name}.clock_rate"),
            format!(
                "{} runs at {} Hz, not {}",
                codec.name(),
                codec.clock_rate(),
                t.clock_rate
            ),
        ));
    }
    if !(10..=120).contains(&t.ptime_ms) || t.ptime_ms % 10 != 0 {
        return Err(DaemonError::invalid(
            format!("{name}.ptime_ms"),
            format!("{}: must be 10, 20, … 120", t.ptime_ms),
        ));
    }
    Ok(codec)
}

fn bad_keying(e: KeyingError) -> DaemonError {
    DaemonError::BadKeying(e.to_string())
}

/// The call keys the keying parameters give (and, for wa-e2e, the call key itself, to
/// re-derive receive keys later).
/// The payload type of the peer's telephone-events on track `kind` (`name` in errors): audio
/// only, the one asked for (no track's media payload type), else 101 unless a track uses it.
fn dtmf_payload_type(
    p: &StartParams,
    kind: MediaKind,
    name: &str,
) -> Result<Option<u8>, DaemonError> {
    let field = || format!("{name}.dtmf_payload_type");
    let track = match kind {
        MediaKind::Audio => &p.audio,
        MediaKind::Video => &p.video,
    };
    let asked = track.as_ref().and_then(|t| t.dtmf_payload_type);
    if kind == MediaKind::Video {
        return match asked {
            Some(_) => Err(DaemonError::invalid(
                field(),
                "telephone-events are audio only",
            )),
            None => Ok(None),
        };
    }
    let taken = |pt: u8| {
        [&p.audio, &p.video]
            .into_iter()
            .flatten()
            .any(|t| t.payload_type == pt)
    };
    match asked {
        Some(pt) => {
            crate::rtp::check_payload_type(pt).map_err(|e| DaemonError::invalid(field(), e))?;
            if taken(pt) {
                return Err(DaemonError::invalid(
                    field(),
                    format!("{pt} is a track's media payload type"),
                ));
            }
            Ok(Some(pt))
        }
        None => Ok((!taken(crate::media::dtmf::DEFAULT_PAYLOAD_TYPE))
            .then_some(crate::media::dtmf::DEFAULT_PAYLOAD_TYPE)),
    }
}

fn call_keys(p: &StartParams) -> Result<(CallKeys, Option<CallKey>), DaemonError> {
    match &p.keying {
        KeyingParams::Sdes { profile, tx, rx } => {
            Ok((sdes::call_keys(profile, tx, rx).map_err(bad_keying)?, None))
        }
        KeyingParams::WaE2e {
            call_key,
            enc_plaintext,
            tag_len,
        } => {
            let self_id = device_id(p.self_id.as_deref(), "self")?;
            let peer = device_id(p.peer.as_deref(), "peer")?;
            let key = match (call_key, enc_plaintext) {
                (Some(k), None) => CallKey::from_base64(k),
                (None, Some(e)) => CallKey::from_enc_plaintext_base64(e),
                _ => {
                    return Err(DaemonError::invalid(
                        "keying",
                        "wa-e2e needs exactly one of call_key and enc_plaintext",
                    ));
                }
            }
            .map_err(bad_keying)?;
            let keys = key.call_keys(self_id, peer, *tag_len).map_err(bad_keying)?;
            Ok((keys, Some(key)))
        }
    }
}

fn device_id<'a>(id: Option<&'a str>, field: &str) -> Result<&'a str, DaemonError> {
    match id {
        Some(id) if !id.trim().is_empty() => Ok(id),
        _ => Err(DaemonError::invalid(field, "required for wa-e2e keying")),
    }
}

/// Our SSRC for `kind`: the track's `ssrc` if given, else derived from the call id and our
/// device id under wa-e2e, else random.
fn ssrc(p: &StartParams, kind: MediaKind) -> Ssrc {
    let track = match kind {
        MediaKind::Audio => &p.audio,
        MediaKind::Video => &p.video,
    };
    if let Some(ssrc) = track.as_ref().and_then(|t| t.ssrc) {
        return Ssrc(ssrc);
    }
    match (&p.keying, &p.self_id) {
        (KeyingParams::WaE2e { .. }, Some(self_id)) => {
            let slot = match kind {
                MediaKind::Audio => SsrcSlot::Audio,
                MediaKind::Video => SsrcSlot::Video,
            };
            wa_e2e::derive_ssrc(&p.call_id, self_id, slot)
        }
        _ => Ssrc(rand::random()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: serde_json::Value) -> StartParams {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "call_id": "C1",
            "candidates": [{"ip": "127.0.0.1", "port": 5000, "priority": 2}],
            "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                       "tx": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "rx": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"},
            "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": 7,
                      "source": {"kind": "rtp"}, "sink": {"kind": "rtp", "forward": "127.0.0.1:6000"}},
        })
    }

    fn error(v: serde_json::Value) -> DaemonError {
        plan(
            &params(v),
            &Config::default(),
            &RemotePolicy::default(),
            false,
        )
        .unwrap_err()
    }

    #[test]
    fn a_request_becomes_a_plan() {
        let mut config = Config::default();
        config.calls.media_timeout_s = 7;
        let p = plan(&params(base()), &config, &RemotePolicy::default(), true).unwrap();
        assert!(p.setup.ringing);
        assert!(!p.ipv6);
        assert_eq!(p.setup.timers.media_timeout, Duration::from_secs(7));
        assert_eq!(
            p.setup.candidates[0].addr,
            "127.0.0.1:5000".parse().unwrap()
        );
        assert_eq!(p.setup.audio.unwrap().ssrc, Ssrc(7));
        let audio = p.audio.unwrap();
        assert_eq!(audio.source, SourcePlan::Rtp { listen: None });
        assert_eq!(audio.sink, SinkPlan::Rtp("127.0.0.1:6000".parse().unwrap()));
        assert!(p.video.is_none() && p.call_key.is_none());

        let mut v = base();
        v["bind"] = json!("[::1]:0");
        v["candidates"] = json!([{"ip": "::1", "port": 5000}]);
        v["audio"]["source"] = json!({"kind": "rtp", "ssrc": 99});
        let p = plan(&params(v), &config, &RemotePolicy::default(), false).unwrap();
        assert!(p.ipv6);
        assert_eq!(p.bind, Some(("::1".parse().unwrap(), 0)));
        assert_eq!(
            p.audio.unwrap().source,
            SourcePlan::SharedRtp { ssrc: Ssrc(99) }
        );
    }

    #[test]
    fn codecs_follow_the_payload_type_or_the_request_and_must_fit_the_track() {
        let codec = |v: serde_json::Value| {
            let p = plan(
                &params(v),
                &Config::default(),
                &RemotePolicy::default(),
                false,
            );
            p.unwrap().audio.unwrap().params.codec
        };
        assert_eq!(codec(base()), Some(CodecKind::Opus));
        let mut v = base();
        v["audio"]["payload_type"] = json!(0);
        v["audio"]["clock_rate"] = json!(8000);
        assert_eq!(codec(v.clone()), Some(CodecKind::Pcmu));
        v["audio"]["payload_type"] = json!(8);
        assert_eq!(codec(v.clone()), Some(CodecKind::Pcma));
        v["audio"]["payload_type"] = json!(96);
        v["audio"]["codec"] = json!("pcmu");
        assert_eq!(codec(v.clone()), Some(CodecKind::Pcmu));
        // WhatsApp stamps Opus on a 16 kHz clock.
        let mut v = base();
        v["audio"]["clock_rate"] = json!(16000);
        assert_eq!(codec(v), Some(CodecKind::Opus));

        let invalid = |v: serde_json::Value| match error(v) {
            DaemonError::InvalidParam { field, reason } => (field, reason),
            other => panic!("{other:?}"),
        };
        let mut v = base();
        v["audio"]["codec"] = json!("pcma");
        let (field, reason) = invalid(v);
        assert_eq!(field, "audio.clock_rate");
        assert!(reason.contains("pcma runs at 8000 Hz"), "{reason}");
        for ptime in [0, 5, 25, 130] {
            let mut v = base();
            v["audio"]["ptime_ms"] = json!(ptime);
            assert_eq!(invalid(v).0, "audio.ptime_ms", "{ptime}");
        }
        let mut v = base();
        v["video"] = json!({"payload_type": 97, "clock_rate": 90000, "codec": "opus"});
        assert_eq!(invalid(v).0, "video.codec");
        let mut v = base();
        v["audio"]["payload_type"] = json!(0);
        v["audio"]["clock_rate"] = json!(8000);
        v["audio"]["sink"] = json!({"kind": "file", "path": "/tmp/x.opus"});
        let (field, reason) = invalid(v.clone());
        assert_eq!(field, "audio.sink.path");
        assert!(reason.contains(".wav"), "{reason}");
        v["audio"]["sink"] = json!({"kind": "file", "path": "/tmp/x.wav"});
        let p = plan(
            &params(v),
            &Config::default(),
            &RemotePolicy::default(),
            false,
        )
        .unwrap();
        assert!(matches!(
            p.audio.unwrap().sink,
            SinkPlan::File {
                format: RecordingFormat::Wav,
                ..
            }
        ));
        let mut v = base();
        v["video"] = json!({"payload_type": 97, "clock_rate": 90000,
                            "sink": {"kind": "file", "path": "/tmp/v.wav"}});
        assert_eq!(invalid(v).0, "video.sink.path");
    }

    #[test]
    fn wrong_requests_name_the_field() {
        let field = |e: DaemonError| match e {
            DaemonError::InvalidParam { field, .. } => field,
            other => panic!("{other:?}"),
        };
        let mut v = base();
        v["call_id"] = json!(" ");
        assert_eq!(field(error(v)), "call_id");
        let mut v = base();
        v["call_id"] = json!("C1\n2026-12-03 INFO forged");
        assert_eq!(field(error(v)), "call_id");
        let mut v = base();
        v["call_id"] = json!("C".repeat(129));
        assert_eq!(field(error(v)), "call_id");
        let mut v = base();
        v.as_object_mut().unwrap().remove("audio");
        assert_eq!(field(error(v)), "audio");
        let mut v = base();
        v["candidates"][0]["port"] = json!(0);
        assert!(
            matches!(error(v), DaemonError::InvalidParam { field, reason }
            if field == "candidates[0]" && reason.contains("port 0"))
        );
        let mut v = base();
        v["candidates"] = json!([{"ip": "127.0.0.1", "port": 1}, {"ip": "::1", "port": 2}]);
        assert_eq!(field(error(v)), "candidates[1].ip");
        let mut v = base();
        v["bind"] = json!("::1");
        assert_eq!(field(error(v)), "candidates[0].ip");
        for pt in [72, 95, 200] {
            let mut v = base();
            v["audio"]["payload_type"] = json!(pt);
            assert_eq!(field(error(v)), "audio.payload_type", "{pt}");
        }
        for bad in ["0.0.0.0", "224.0.0.1", "255.255.255.255", "127.255.255.255"] {
            let mut v = base();
            v["candidates"][0]["ip"] = json!(bad);
            assert_eq!(field(error(v)), "candidates[0]", "{bad}");
        }
        for bad in ["127.0.0.1:0", "0.0.0.0:6000"] {
            let mut v = base();
            v["audio"]["sink"]["forward"] = json!(bad);
            assert_eq!(field(error(v)), "audio.sink.forward", "{bad}");
        }
        let mut v = base();
        v["candidates"] = json!(
            (0..17)
                .map(|i| json!({"ip": "127.0.0.1", "port": 5000 + i}))
                .collect::<Vec<_>>()
        );
        assert_eq!(field(error(v)), "candidates");
        let policy = RemotePolicy::default();
        policy.own.claim(5000);
        let e = plan(&params(base()), &Config::default(), &policy, false).unwrap_err();
        assert_eq!(field(e), "candidates[0]", "one of srtpd's own sockets");
        let mut v = base();
        v["bind"] = json!("nowhere");
        assert_eq!(field(error(v)), "bind");
        let mut v = base();
        v["audio"]["source"] = json!({"kind": "rtp", "listen": "127.0.0.1:0", "ssrc": 1});
        assert_eq!(field(error(v)), "audio.source");
        let mut v = base();
        v["keying"] = json!({"scheme": "wa-e2e", "call_key": "AAAA"});
        assert_eq!(field(error(v)), "self");
        let mut v = base();
        v["keying"]["tx"] = json!("bm90IGEga2V5");
        assert!(matches!(error(v), DaemonError::BadKeying(m) if !m.contains("bm90")));
    }
}
