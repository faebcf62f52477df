//! Typed `<call>` stanzas, read from a [`Node`] in either dialect: the draft dialect of the
//! project's spec documents and the wire dialect public clients see.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::StanzaError;
use super::node::Node;
use crate::call::MediaKind;

/// A transport candidate from `<destination>/<te>` or `<relay>/<te2>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StanzaCandidate {
    /// The address.
    pub addr: SocketAddr,
    /// Preference (the `priority` attribute, 0 when absent).
    pub priority: u32,
    /// Whether it came from a `<te2>` relay entry.
    pub relay: bool,
}

/// An audio codec offered or accepted (`<audio enc rate>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioCodec {
    /// Codec name, e.g. `opus`.
    pub enc: String,
    /// Clock rate in Hz.
    pub rate: Option<u32>,
}

/// What an offer or accept says about media.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MediaOffer {
    /// Candidates, in stanza order.
    pub candidates: Vec<StanzaCandidate>,
    /// Audio codecs.
    pub audio: Vec<AudioCodec>,
    /// Whether video is offered.
    pub video: bool,
    /// Whether an `<enc>` (keying contribution) is present.
    pub has_enc: bool,
}

/// The video states of both dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoState {
    /// Draft `state="on"`.
    On,
    /// Draft `state="off"`.
    Off,
    /// Wire 0.
    Disabled,
    /// Wire 1.
    Enabled,
    /// Wire 2.
    Paused,
    /// Wire 3.
    UpgradeRequest,
    /// Wire 4.
    UpgradeAccept,
    /// Wire 5.
    UpgradeReject,
    /// Wire 6.
    Stopped,
    /// Wire 11.
    UpgradeRequestV2,
    /// A number neither dialect defines.
    Unknown(u32),
}

impl VideoState {
    /// Whether the sender's video is now flowing (`Some(true)`), stopped (`Some(false)`), or
    /// unchanged by this state (requests and answers of an upgrade negotiation).
    pub fn sending(self) -> Option<bool> {
        match self {
            VideoState::On | VideoState::Enabled | VideoState::UpgradeAccept => Some(true),
            VideoState::Off | VideoState::Disabled | VideoState::Paused | VideoState::Stopped => {
                Some(false)
            }
            _ => None,
        }
    }

    fn parse(value: &str) -> Result<Self, &'static str> {
        Ok(match value {
            "on" => VideoState::On,
            "off" => VideoState::Off,
            n => match n.parse::<u32>() {
                Ok(0) => VideoState::Disabled,
                Ok(1) => VideoState::Enabled,
                Ok(2) => VideoState::Paused,
                Ok(3) => VideoState::UpgradeRequest,
                Ok(4) => VideoState::UpgradeAccept,
                Ok(5) => VideoState::UpgradeReject,
                Ok(6) => VideoState::Stopped,
                Ok(11) => VideoState::UpgradeRequestV2,
                Ok(other) => VideoState::Unknown(other),
                Err(_) => return Err("expected on, off or a number"),
            },
        })
    }
}

/// What a stanza does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallAction {
    /// `<offer>`: a call is ringing.
    Offer(MediaOffer),
    /// `<accept>`: a device answered.
    Accept(MediaOffer),
    /// `<mute>` or `<mute_v2>`.
    Mute {
        /// Which track.
        media: MediaKind,
        /// Muted or not.
        muted: bool,
    },
    /// `<video>`.
    Video(VideoState),
    /// `<terminate>`.
    Terminate {
        /// `reason`, if given.
        reason: Option<String>,
    },
    /// `<reject>`.
    Reject {
        /// `reason`, if given.
        reason: Option<String>,
    },
}

/// A `<call>` stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStanza {
    /// The sender (`<call from>`).
    pub from: Option<String>,
    /// The addressee (`<call to>`).
    pub to: Option<String>,
    /// The stanza id.
    pub id: Option<String>,
    /// The call id.
    pub call_id: String,
    /// The call creator, if given.
    pub call_creator: Option<String>,
    /// What the stanza does.
    pub action: CallAction,
    /// Unknown children and attributes that were skipped.
    pub ignored: usize,
}

impl CallStanza {
    /// Whether a terminate's reason says another of the user's devices took the call.
    pub fn accepted_elsewhere(&self) -> bool {
        matches!(
            &self.action,
            CallAction::Terminate { reason: Some(r) } if r == "accept_elsewhere" || r == "accepted_elsewhere"
        )
    }

    /// Reads a `<call>` node.
    pub fn from_node(node: &Node) -> Result<CallStanza, StanzaError> {
        if node.tag != "call" {
            return Err(StanzaError::NotCall(node.tag.clone()));
        }
        let mut ignored = unknown_attrs(node, &["from", "to", "id"]);
        let mut action_node = None;
        for child in node.children() {
            if action_node.is_none() && ACTIONS.contains(&child.tag.as_str()) {
                action_node = Some(child);
            } else {
                ignored += 1;
            }
        }
        let a = action_node.ok_or(StanzaError::NoAction)?;
        let call_id = a.required("call-id")?;
        if let Err(reason) = crate::call::check_call_id(call_id) {
            return Err(StanzaError::BadAttribute {
                element: a.tag.clone(),
                attribute: "call-id",
                reason,
            });
        }
        let (action, skipped) = read_action(a)?;
        Ok(CallStanza {
            from: node.attr("from").map(str::to_owned),
            to: node.attr("to").map(str::to_owned),
            id: node.attr("id").map(str::to_owned),
            call_id: call_id.to_owned(),
            call_creator: a.attr("call-creator").map(str::to_owned),
            action,
            ignored: ignored + skipped,
        })
    }
}

const ACTIONS: &[&str] = &[
    "offer",
    "accept",
    "mute",
    "mute_v2",
    "video",
    "terminate",
    "reject",
];

fn unknown_attrs(node: &Node, known: &[&str]) -> usize {
    node.attrs
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .count()
}

fn bad(node: &Node, attribute: &'static str, reason: impl Into<String>) -> StanzaError {
    StanzaError::BadAttribute {
        element: node.tag.clone(),
        attribute,
        reason: reason.into(),
    }
}

fn read_action(a: &Node) -> Result<(CallAction, usize), StanzaError> {
    let base = ["call-id", "call-creator"];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    Ok(match a.tag.as_str() {
        "offer" | "accept" => {
            let mut ignored = unknown_attrs(a, &with(&[]));
            let media = read_media(a, &mut ignored)?;
            let action = if a.tag == "offer" {
                CallAction::Offer(media)
            } else {
                CallAction::Accept(media)
            };
            (action, ignored)
        }
        "mute" => {
            let media = match a.attr("media").unwrap_or("audio") {
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                other => return Err(bad(a, "media", format!("{other:?} is not audio or video"))),
            };
            let muted = match a.required("value")? {
                "true" | "1" => true,
                "false" | "0" => false,
                other => return Err(bad(a, "value", format!("{other:?} is not true or false"))),
            };
            (
                CallAction::Mute { media, muted },
                unknown_attrs(a, &with(&["media", "value"])) + a.children().len(),
            )
        }
        "mute_v2" => {
            let muted = match a.required("mute-state")? {
                "1" => true,
                "0" => false,
                other => return Err(bad(a, "mute-state", format!("{other:?} is not 0 or 1"))),
            };
            (
                CallAction::Mute {
                    media: MediaKind::Audio,
                    muted,
                },
                unknown_attrs(a, &with(&["mute-state"])) + a.children().len(),
            )
        }
        "video" => {
            let state = VideoState::parse(a.required("state")?).map_err(|r| bad(a, "state", r))?;
            (
                CallAction::Video(state),
                unknown_attrs(a, &with(&["state"])) + a.children().len(),
            )
        }
        "terminate" | "reject" => {
            let reason = a.attr("reason").map(str::to_owned);
            let ignored = unknown_attrs(a, &with(&["reason"])) + a.children().len();
            let action = if a.tag == "terminate" {
                CallAction::Terminate { reason }
            } else {
                CallAction::Reject { reason }
            };
            (action, ignored)
        }
        other => unreachable!("{other} is not in ACTIONS"),
    })
}

fn read_media(a: &Node, ignored: &mut usize) -> Result<MediaOffer, StanzaError> {
    let mut media = MediaOffer::default();
    for child in a.children() {
        *ignored += match child.tag.as_str() {
            "destination" | "relay" => unknown_attrs(child, &[]),
            "audio" => unknown_attrs(child, &["enc", "rate"]),
            "video" => unknown_attrs(child, &["enc"]),
            "enc" => unknown_attrs(child, &["v", "type"]),
            _ => 0,
        };
        match child.tag.as_str() {
            "destination" => {
                for te in child.children() {
                    if te.tag == "te" {
                        media.candidates.push(read_te(te, false, ignored)?);
                    } else {
                        *ignored += 1;
                    }
                }
            }
            "relay" => {
                for te in child.children() {
                    if te.tag == "te2" || te.tag == "te" {
                        media.candidates.push(read_te(te, true, ignored)?);
                    } else {
                        *ignored += 1;
                    }
                }
            }
            "te2" => media.candidates.push(read_te(child, true, ignored)?),
            "audio" => {
                let rate = match child.attr("rate") {
                    Some(r) => Some(
                        r.parse::<u32>()
                            .map_err(|_| bad(child, "rate", format!("{r:?} is not a number")))?,
                    ),
                    None => None,
                };
                media.audio.push(AudioCodec {
                    enc: child.attr("enc").unwrap_or("opus").to_owned(),
                    rate,
                });
            }
            "video" => media.video = true,
            "enc" => media.has_enc = true,
            _ => *ignored += 1,
        }
    }
    Ok(media)
}

fn read_te(te: &Node, relay: bool, ignored: &mut usize) -> Result<StanzaCandidate, StanzaError> {
    *ignored += unknown_attrs(
        te,
        &["ip", "port", "priority", "relay_id", "relay_name", "token"],
    );
    let priority = match te.attr("priority") {
        Some(p) => p
            .parse::<u32>()
            .map_err(|_| bad(te, "priority", format!("{p:?} is not a number")))?,
        None => 0,
    };
    let addr = match (te.attr("ip"), te.attr("port")) {
        (Some(ip), Some(port)) => {
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| bad(te, "ip", format!("{ip:?} is not an IP address")))?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(te, "port", format!("{port:?} is not a port number")))?;
            SocketAddr::new(ip, port)
        }
        (Some(_), None) => {
            return Err(StanzaError::MissingAttribute {
                element: te.tag.clone(),
                attribute: "port",
            });
        }
        (None, Some(_)) => {
            return Err(StanzaError::MissingAttribute {
                element: te.tag.clone(),
                attribute: "ip",
            });
        }
        (None, None) => {
            let bytes = te.binary().unwrap_or_default();
            match bytes.len() {
                6 => SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
                    u16::from_be_bytes([bytes[4], bytes[5]]),
                ),
                18 => {
                    let ip: [u8; 16] = bytes[..16].try_into().expect("16 bytes");
                    SocketAddr::new(
                        IpAddr::V6(Ipv6Addr::from(ip)),
                        u16::from_be_bytes([bytes[16], bytes[17]]),
                    )
                }
                len => {
                    return Err(StanzaError::BadTransport {
                        element: te.tag.clone(),
                        len,
                    });
                }
            }
        }
    };
    Ok(StanzaCandidate {
        addr,
        priority,
        relay,
    })
}
