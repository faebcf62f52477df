//! `call.stanza`: drives calls from `<call>` stanzas the signaling client forwards.
//!
//! Whose stanza it is decides what it does: one from our own device (`self`) describes what we
//! did (our accept, our mute), one from another device what the peer did.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::{Daemon, DaemonError, setup};
use crate::call::{Candidate, Event, MediaKind};
use crate::control::params::{
    CandidateParams, KeyingParams, Role, SinkParams, SourceParams, StanzaParams, StartParams,
    TrackParamsIn,
};
use crate::keying::wa_e2e::normalize_device_id;
use crate::stanza::{CallAction, CallStanza, MediaOffer, parse_json, parse_xml};

/// A `[stanza]` source or sink spec, already checked when the config was loaded.
fn spec<T>(field: &str, parsed: Result<T, String>) -> Result<T, DaemonError> {
    parsed.map_err(|e| DaemonError::invalid(field, e))
}

/// Whether two device ids name the same device.
fn same_device(a: &str, b: &str) -> bool {
    normalize_device_id(a) == normalize_device_id(b)
}

impl Daemon {
    /// Carries out a `<call>` stanza; the result says what it did (`action`), with what
    /// `call.start` returns when it started a call.
    pub async fn stanza(&self, p: StanzaParams) -> Result<Value, DaemonError> {
        let stanza = match (&p.xml, &p.node) {
            (Some(xml), None) => parse_xml(xml).map_err(|e| DaemonError::invalid("xml", e))?,
            (None, Some(node)) => parse_json(node).map_err(|e| DaemonError::invalid("node", e))?,
            _ => {
                return Err(DaemonError::invalid(
                    "xml",
                    "give exactly one of xml and node",
                ));
            }
        };
        let ours = stanza
            .from
            .as_deref()
            .is_some_and(|f| same_device(f, &p.self_id));
        let by = if ours { "self" } else { "peer" };
        let call_id = stanza.call_id.clone();
        let mut result = match &stanza.action {
            CallAction::Offer(media) => {
                if self.registry.get(&call_id).is_ok() {
                    json!({"call_id": call_id, "action": "ignored", "why": "the call already exists"})
                } else {
                    let role = if ours { Role::Caller } else { Role::Callee };
                    let start = self.stanza_start_params(&p, &stanza, media, role)?;
                    let mut r = started_json(self.start_call(start, true).await?);
                    r["action"] = json!("ringing");
                    r
                }
            }
            CallAction::Accept(media) => match self.registry.get(&call_id) {
                Ok(record) => {
                    let addrs: Vec<SocketAddr> = media.candidates.iter().map(|c| c.addr).collect();
                    setup::check_candidates(
                        "candidates",
                        &addrs,
                        record
                            .started
                            .local
                            .map(|l| (l.is_ipv6(), "the call's media socket")),
                        &self.policy,
                        self.config().calls.max_candidates,
                    )?;
                    // Another device answering our offer: receive with that device's keys.
                    let rekey = match (&stanza.from, ours) {
                        (Some(from), false) => self.rekey_for(&call_id, &p.self_id, from)?,
                        _ => None,
                    };
                    let rekeyed = rekey.is_some();
                    let candidates: Vec<Candidate> = media
                        .candidates
                        .iter()
                        .map(|c| Candidate {
                            addr: c.addr,
                            priority: c.priority,
                        })
                        .collect();
                    let was_ringing: bool = self
                        .on_call(&call_id, move |ep, no, now| {
                            ep.answer(no, &candidates, rekey, now)
                        })
                        .await?;
                    let action = if was_ringing {
                        "started"
                    } else if rekeyed {
                        "rekeyed"
                    } else {
                        "ignored"
                    };
                    let mut r = self
                        .started(&call_id)
                        .map_or_else(|| json!({"call_id": call_id}), started_json);
                    r["action"] = json!(action);
                    r
                }
                Err(_) => {
                    let role = if ours { Role::Callee } else { Role::Caller };
                    let start = self.stanza_start_params(&p, &stanza, media, role)?;
                    let mut r = started_json(self.start_call(start, false).await?);
                    r["action"] = json!("started");
                    r
                }
            },
            CallAction::Mute { media, muted } => {
                if ours {
                    self.mute(&call_id, *media, *muted).await?;
                } else {
                    let (muted, video) = match media {
                        MediaKind::Audio => (Some(*muted), None),
                        MediaKind::Video => (None, Some(!*muted)),
                    };
                    self.set_peer_state(&call_id, muted, video).await?;
                    self.publish(Event::PeerState {
                        call_id: call_id.as_str().into(),
                        muted,
                        video,
                    });
                }
                json!({"call_id": call_id, "action": if *muted { "muted" } else { "unmuted" }, "media": media, "by": by})
            }
            CallAction::Video(state) => {
                self.registry.get(&call_id)?;
                match state.sending() {
                    None => {
                        json!({"call_id": call_id, "action": "ignored", "why": format!("video state {state:?} changes nothing")})
                    }
                    Some(on) if ours => match self.mute(&call_id, MediaKind::Video, !on).await {
                        Ok(()) => {
                            json!({"call_id": call_id, "action": "video", "enabled": on, "by": by})
                        }
                        Err(DaemonError::InvalidParam { .. }) => {
                            json!({"call_id": call_id, "action": "ignored", "why": "the call has no video track"})
                        }
                        Err(e) => return Err(e),
                    },
                    Some(on) => {
                        self.set_peer_state(&call_id, None, Some(on)).await?;
                        self.publish(Event::PeerState {
                            call_id: call_id.as_str().into(),
                            muted: None,
                            video: Some(on),
                        });
                        json!({"call_id": call_id, "action": "video", "enabled": on, "by": by})
                    }
                }
            }
            CallAction::Terminate { reason } | CallAction::Reject { reason } => {
                let default = if matches!(stanza.action, CallAction::Reject { .. }) {
                    "rejected"
                } else {
                    "terminated"
                };
                let reason = reason.clone().unwrap_or_else(|| default.to_owned());
                let stats = self.terminate(&call_id, reason.clone()).await?;
                json!({"call_id": call_id, "action": "ended", "reason": reason, "by": by, "stats": stats})
            }
        };
        result["skipped"] = json!(stanza.ignored);
        Ok(result)
    }

    /// The receive keys for `answering_device`, if the call is wa-e2e keyed.
    fn rekey_for(
        &self,
        call_id: &str,
        self_id: &str,
        answering_device: &str,
    ) -> Result<Option<(crate::srtp::SrtpProfile, crate::srtp::MasterKey)>, DaemonError> {
        let record = self.registry.get(call_id)?;
        Ok(match &record.call_key {
            Some((key, tag_len)) => {
                let keys = key
                    .call_keys(self_id, answering_device, *tag_len)
                    .map_err(|e| DaemonError::BadKeying(e.to_string()))?;
                Some((keys.profile, keys.rx))
            }
            None => None,
        })
    }

    /// `call.start` parameters for a call an offer or accept creates.
    fn stanza_start_params(
        &self,
        p: &StanzaParams,
        stanza: &CallStanza,
        media: &MediaOffer,
        role: Role,
    ) -> Result<StartParams, DaemonError> {
        let d = &self.config().stanza;
        // The peer is the other end of the stanza: whom our own stanza went to, or who sent
        // theirs (for an accept, the device that answered).
        let ours = stanza
            .from
            .as_deref()
            .is_some_and(|f| same_device(f, &p.self_id));
        let peer = if ours {
            stanza.to.clone()
        } else {
            stanza.from.clone()
        };
        let keying = match &p.keying {
            Some(k) => k.clone(),
            None => KeyingParams::WaE2e {
                call_key: p.call_key.clone(),
                enc_plaintext: p.enc_plaintext.clone(),
                tag_len: Some(d.tag_len),
            },
        };
        let audio = match &p.audio {
            Some(a) => a.clone(),
            None => TrackParamsIn {
                payload_type: d.audio_payload_type,
                clock_rate: media
                    .audio
                    .first()
                    .and_then(|a| a.rate)
                    .unwrap_or(d.audio_clock_rate),
                ptime_ms: d.audio_ptime_ms,
                codec: None,
                dtmf_payload_type: None,
                ssrc: None,
                source: spec(
                    "stanza.audio_source",
                    SourceParams::from_spec(&d.audio_source),
                )?,
                sink: spec("stanza.audio_sink", SinkParams::from_spec(&d.audio_sink))?,
            },
        };
        let video = match (&p.video, media.video) {
            (Some(v), _) => Some(v.clone()),
            (None, true) => Some(TrackParamsIn {
                payload_type: d.video_payload_type,
                clock_rate: d.video_clock_rate,
                ptime_ms: 0,
                codec: None,
                dtmf_payload_type: None,
                ssrc: None,
                source: spec(
                    "stanza.video_source",
                    SourceParams::from_spec(&d.video_source),
                )?,
                sink: spec("stanza.video_sink", SinkParams::from_spec(&d.video_sink))?,
            }),
            (None, false) => None,
        };
        Ok(StartParams {
            call_id: stanza.call_id.clone(),
            call_creator: stanza.call_creator.clone(),
            role,
            self_id: Some(p.self_id.clone()),
            peer,
            bind: p.bind.clone(),
            candidates: media
                .candidates
                .iter()
                .map(|c| CandidateParams {
                    ip: c.addr.ip(),
                    port: c.addr.port(),
                    priority: c.priority,
                })
                .collect(),
            keying,
            audio: Some(audio),
            video,
            mute_mode: None,
            bridge: None,
        })
    }
}

/// What `call.start` returned, as the JSON object a stanza's result extends.
fn started_json(started: super::Started) -> Value {
    serde_json::to_value(started).unwrap_or_else(|_| json!({}))
}
