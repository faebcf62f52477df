//! One call's media session, without I/O: datagrams, source packets and time go in;
//! datagrams to send, events and the next deadline come out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::rtcp::{self, ReportBlock, SenderInfo};
use super::stats::{DropStats, RecvSnapshot, SendStats};
use super::stun::{self, Binding, TxId};
use super::track::{InboundTrack, MediaKind, MuteMode, OutboundTrack, TrackParams};
use crate::keying::CallKeys;
use crate::media::dtmf::{DtmfReceiver, DtmfSender};
use crate::rtp::{PacketKind, RtpPacket, SeqNo, Ssrc, classify};
use crate::srtp::{SrtcpContext, SrtpContext, SrtpError, SrtpOptions};

/// A transport candidate of the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Where to send.
    pub addr: SocketAddr,
    /// Higher is preferred.
    pub priority: u32,
}

impl Candidate {
    /// Where media goes first: the highest priority, the earliest of equals.
    pub fn preferred(candidates: &[Candidate]) -> Option<SocketAddr> {
        candidates
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (c.priority, std::cmp::Reverse(*i)))
            .map(|(_, c)| c.addr)
    }
}

/// The timers of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTimers {
    /// How long STUN checks to the candidates are retried.
    pub check_timeout: Duration,
    /// Send a keepalive after this long without sending.
    pub keepalive: Duration,
    /// Interval of RTCP reports.
    pub rtcp_interval: Duration,
    /// No inbound media for this long raises `MediaTimeout`.
    pub media_timeout: Duration,
    /// The same while the peer is muted or on hold.
    pub media_timeout_held: Duration,
}

/// One track of a call being set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackSetup {
    /// RTP parameters.
    pub params: TrackParams,
    /// Our SSRC (derived by the keying scheme, or random).
    pub ssrc: Ssrc,
}

/// Everything a call needs to start.
#[derive(Clone, Debug)]
pub struct CallSetup {
    /// The call id.
    pub call_id: String,
    /// Per-direction master keys.
    pub keys: CallKeys,
    /// SRTP context options.
    pub srtp: SrtpOptions,
    /// The peer's candidates (may be empty: then the first authenticated packet decides).
    pub candidates: Vec<Candidate>,
    /// The audio track.
    pub audio: Option<TrackSetup>,
    /// The video track.
    pub video: Option<TrackSetup>,
    /// Timers.
    pub timers: CallTimers,
    /// Start ringing: candidates are checked and keys are ready, but no media is sent until
    /// [`CallSession::answer`].
    pub ringing: bool,
    /// What muted audio sends.
    pub mute_mode: MuteMode,
}

/// Where the call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Offered and not yet answered: no media is sent.
    Ringing,
    /// No remote address yet: waiting for the peer's first authenticated packet.
    Waiting,
    /// Sending to the preferred candidate, nothing confirmed yet.
    Checking,
    /// A STUN check succeeded or an authenticated packet arrived.
    Connected,
}

/// Something the signaling client should hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// First confirmation of the remote: by `how` ("stun" or "media").
    Connected {
        /// The remote address.
        remote: SocketAddr,
        /// What confirmed it.
        how: &'static str,
    },
    /// The remote moved (a better candidate answered, or authenticated media came from
    /// elsewhere).
    RemoteChanged {
        /// The previous remote.
        from: Option<SocketAddr>,
        /// The new one.
        to: SocketAddr,
        /// Why.
        how: &'static str,
    },
    /// Our video was turned back on: the encoder must send a keyframe first.
    KeyframeNeeded {
        /// The track.
        kind: MediaKind,
    },
    /// No inbound media for the configured time.
    MediaTimeout {
        /// Seconds since the last inbound media (or since the start).
        silent_s: u64,
        /// Whether the longer limit (peer muted or on hold) applied.
        held: bool,
    },
    /// The peer pressed a key: a DTMF telephone-event began (told once per digit).
    Dtmf {
        /// The digit: 0–9, `*`, `#`, A–D.
        digit: char,
    },
}

/// Why digits cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtmfRefused {
    /// The call has no audio track.
    #[error("the call has no audio track")]
    NoAudio,
    /// The audio track has no telephone-event payload type.
    #[error("the audio track has no dtmf_payload_type")]
    NoPayloadType,
    /// Digits are being sent.
    #[error("digits are being sent; wait for them to end")]
    Busy,
}

/// What became of a received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// An authenticated RTP packet of `kind`, decrypted in place: `len` bytes of plain RTP.
    Media {
        /// The track.
        kind: MediaKind,
        /// Plain RTP length.
        len: usize,
    },
    /// STUN or RTCP, handled inside the session.
    Consumed,
    /// Dropped and counted.
    Dropped(DropReason),
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Failed authentication.
    Auth,
    /// Replayed or too old.
    Replay,
    /// Malformed, not for us, or unusable.
    Other,
}

/// A datagram for the shell to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dest: SocketAddr,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Statistics of one track.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TrackStats {
    /// Sent.
    pub sent: SendStats,
    /// Received.
    pub received: RecvSnapshot,
    /// Dropped on receipt.
    pub dropped: DropStats,
    /// Whether our sending is gated (muted / video off).
    pub muted: bool,
    /// Source packets not sent because the track was gated.
    pub gated: u64,
}

/// A snapshot of a call's statistics.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CallStats {
    /// The call id.
    pub call_id: String,
    /// Where the call stands.
    pub state: CallState,
    /// The remote address, once known.
    pub remote: Option<SocketAddr>,
    /// Audio track statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<TrackStats>,
    /// Video track statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<TrackStats>,
    /// Round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// Whether the peer said it is muted.
    pub peer_muted: bool,
    /// Whether the peer said its video is on, once it said anything.
    pub peer_video: Option<bool>,
    /// Datagrams of the call (media, RTCP, STUN) the kernel refused to send.
    pub send_errors: u64,
    /// The bot bridge's figures, while one is attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<super::bridge::BridgeStats>,
}

struct Track {
    params: TrackParams,
    out: OutboundTrack,
    inb: InboundTrack,
    dropped: DropStats,
    dtmf: DtmfReceiver,
    /// Digits being sent, and the timestamp of the first one's start.
    dtmf_out: Option<(DtmfSender, u32)>,
}

struct Check {
    candidate: Candidate,
    txid: TxId,
    next_send: Instant,
    interval: Duration,
}

/// Seconds between 1900 (NTP) and 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// First STUN retransmission interval (RFC 5389 RTO); doubles up to `MAX_CHECK_INTERVAL`.
const FIRST_CHECK_INTERVAL: Duration = Duration::from_millis(100);
const MAX_CHECK_INTERVAL: Duration = Duration::from_millis(800);
/// Candidates a call checks at most, whatever accepts add (each is also a STUN request sent
/// and a table entry on a shared port).
const MAX_CHECKS: usize = 256;

/// The media session of one call.
pub struct CallSession {
    call_id: std::sync::Arc<str>,
    tx: SrtpContext,
    rx: SrtpContext,
    rtcp_tx: SrtcpContext,
    rtcp_rx: SrtcpContext,
    audio: Option<Track>,
    video: Option<Track>,
    timers: CallTimers,
    remote: Option<SocketAddr>,
    state: CallState,
    checks: Vec<Check>,
    checks_until: Instant,
    epoch: (Instant, SystemTime),
    last_sent: Instant,
    last_media_in: Instant,
    timed_out: bool,
    next_rtcp: Instant,
    peer_muted: bool,
    peer_video: Option<bool>,
    send_errors: u64,
    ringing: bool,
    mute_mode: MuteMode,
    next_comfort: Option<Instant>,
    /// When the next telephone-event packet (or pause) of the digits being sent is due.
    next_dtmf: Option<Instant>,
    srtp_options: SrtpOptions,
    rtt_ms: Option<f64>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<CallEvent>,
}

impl CallSession {
    /// A session starting at `now` (`wall` is the same instant on the wall clock, for RTCP's
    /// NTP timestamps).
    pub fn new(setup: CallSetup, now: Instant, wall: SystemTime) -> Result<Self, SrtpError> {
        let keys = &setup.keys;
        let options = keys.options(&setup.srtp);
        let track = |t: Option<TrackSetup>| {
            t.map(|t| Track {
                params: t.params,
                out: OutboundTrack::new(t.params, t.ssrc, SeqNo(rand::random()), rand::random()),
                inb: InboundTrack::new(t.params.clock_rate),
                dropped: DropStats::default(),
                dtmf: DtmfReceiver::default(),
                dtmf_out: None,
            })
        };
        let remote = Candidate::preferred(&setup.candidates);
        let checks = setup
            .candidates
            .iter()
            .map(|&candidate| Check {
                candidate,
                txid: rand::random(),
                next_send: now,
                interval: FIRST_CHECK_INTERVAL,
            })
            .collect();
        Ok(CallSession {
            call_id: setup.call_id.into(),
            tx: SrtpContext::new(keys.profile, &keys.tx, &options)?,
            rx: SrtpContext::new(keys.profile, &keys.rx, &options)?,
            rtcp_tx: SrtcpContext::new(keys.profile, &keys.tx, &options)?,
            rtcp_rx: SrtcpContext::new(keys.profile, &keys.rx, &options)?,
            audio: track(setup.audio),
            video: track(setup.video),
            timers: setup.timers,
            state: if remote.is_some() {
                CallState::Checking
            } else {
                CallState::Waiting
            },
            remote,
            checks,
            checks_until: now + setup.timers.check_timeout,
            epoch: (now, wall),
            last_sent: now,
            last_media_in: now,
            timed_out: false,
            next_rtcp: now + setup.timers.rtcp_interval,
            peer_muted: false,
            peer_video: None,
            send_errors: 0,
            ringing: setup.ringing,
            mute_mode: setup.mute_mode,
            next_comfort: None,
            next_dtmf: None,
            srtp_options: options,
            rtt_ms: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The call id.
    pub fn call_id(&self) -> &std::sync::Arc<str> {
        &self.call_id
    }

    /// The current remote address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Where the call stands.
    pub fn state(&self) -> CallState {
        if self.ringing {
            CallState::Ringing
        } else {
            self.state
        }
    }

    /// Whether the call is ringing (offered, not answered).
    pub fn ringing(&self) -> bool {
        self.ringing
    }

    /// The call was answered: media may flow. `candidates` (from the accept) join the ones
    /// already known and are checked; the best one becomes the remote unless a remote was
    /// already confirmed.
    pub fn answer(&mut self, candidates: &[Candidate], now: Instant) {
        self.ringing = false;
        for &candidate in candidates {
            if self
                .checks
                .iter()
                .any(|c| c.candidate.addr == candidate.addr)
            {
                continue;
            }
            if self.checks.len() >= MAX_CHECKS {
                break;
            }
            self.checks.push(Check {
                candidate,
                txid: rand::random(),
                next_send: now,
                interval: FIRST_CHECK_INTERVAL,
            });
        }
        if !candidates.is_empty() {
            self.checks_until = now + self.timers.check_timeout;
        }
        if self.state != CallState::Connected {
            let best = Candidate::preferred(candidates);
            if let Some(best) = best {
                self.remote = Some(best);
                self.state = CallState::Checking;
            }
        }
    }

    /// Replaces the receive keys (the peer turned out to be another device than assumed).
    /// Receive state starts afresh under the new keys.
    pub fn rekey_rx(
        &mut self,
        profile: crate::srtp::SrtpProfile,
        rx: &crate::srtp::MasterKey,
    ) -> Result<(), SrtpError> {
        self.rx = SrtpContext::new(profile, rx, &self.srtp_options)?;
        self.rtcp_rx = SrtcpContext::new(profile, rx, &self.srtp_options)?;
        Ok(())
    }

    /// Records the peer's video state.
    pub fn set_peer_video(&mut self, on: bool) {
        self.peer_video = Some(on);
    }

    /// Bytes `on_source` appends to a packet (the SRTP tag): keep this much room behind it.
    pub fn overhead(&self) -> usize {
        self.tx.overhead()
    }

    /// Whether the call has a track of `kind`.
    pub fn has_track(&self, kind: MediaKind) -> bool {
        self.track(kind).is_some()
    }

    fn track(&self, kind: MediaKind) -> Option<&Track> {
        match kind {
            MediaKind::Audio => self.audio.as_ref(),
            MediaKind::Video => self.video.as_ref(),
        }
    }

    fn track_mut(&mut self, kind: MediaKind) -> Option<&mut Track> {
        match kind {
            MediaKind::Audio => self.audio.as_mut(),
            MediaKind::Video => self.video.as_mut(),
        }
    }

    /// Gates (or ungates) our sending on track `kind`. Returns `false` if there is no such
    /// track.
    pub fn set_gated(&mut self, kind: MediaKind, gated: bool, now: Instant) -> bool {
        let Some(t) = self.track_mut(kind) else {
            return false;
        };
        let resumed = t.out.gated() && !gated;
        t.out.set_gated(gated);
        match kind {
            MediaKind::Audio if gated && self.mute_mode == MuteMode::Silence => {
                self.next_comfort.get_or_insert(now);
            }
            MediaKind::Audio => self.next_comfort = None,
            MediaKind::Video if resumed => {
                self.events.push_back(CallEvent::KeyframeNeeded { kind })
            }
            MediaKind::Video => {}
        }
        true
    }

    /// The next comfort packet of a muted audio track in silence mode, written into `buf` and
    /// protected; returns its length and destination. Call after every timer run until it
    /// returns `None`.
    pub fn poll_comfort(&mut self, buf: &mut [u8], now: Instant) -> Option<(usize, SocketAddr)> {
        let due = self.next_comfort.filter(|&t| t <= now)?;
        if self.next_dtmf.is_some() {
            // Digits being sent take the silence's place.
            self.next_comfort = Some(due + self.audio.as_ref()?.out.ptime());
            return None;
        }
        let remote = self.remote.filter(|_| !self.ringing)?;
        let track = self.audio.as_mut()?;
        let len = track.out.comfort(buf);
        let ptime = track.out.ptime();
        // Paced by absolute deadlines; after a stall, resume from now rather than burst.
        let next = due + ptime;
        self.next_comfort = Some(if next + ptime < now {
            now + ptime
        } else {
            next
        });
        let n = self.tx.protect(buf, len).ok()?;
        self.last_sent = now;
        Some((n, remote))
    }

    /// A new source feeds track `kind`: keep its timestamps continuous for the peer.
    pub fn switch_source(&mut self, kind: MediaKind) {
        if let Some(t) = self.track_mut(kind) {
            t.out.switch_source();
        }
    }

    /// The parameters of track `kind`, if the call has one.
    pub fn track_params(&self, kind: MediaKind) -> Option<TrackParams> {
        self.track(kind).map(|t| t.params)
    }

    /// The RTP clock rate of track `kind`.
    pub fn clock_rate(&self, kind: MediaKind) -> Option<u32> {
        self.track(kind).map(|t| t.params.clock_rate)
    }

    /// Records whether the peer is muted or on hold (for stats and the media timeout).
    pub fn set_peer_muted(&mut self, muted: bool) {
        self.peer_muted = muted;
    }

    /// A plain RTP packet from the local source of `kind`, in `buf[..len]` with
    /// [`Self::overhead`] spare bytes behind it: rewritten and protected in place. Returns the
    /// datagram length and where to send it, or `None` if it is not sent (gated, no remote
    /// yet, malformed).
    pub fn on_source(
        &mut self,
        kind: MediaKind,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Option<(usize, SocketAddr)> {
        let tag_len = self.tx.overhead();
        let (packet, rest) = buf.split_at_mut(len.min(buf.len()));
        let remote = self.on_source_detached(kind, packet, rest.get_mut(..tag_len)?, now)?;
        Some((len + tag_len, remote))
    }

    /// The same for a plain RTP packet filling `packet`, whose tag ([`Self::overhead`]
    /// bytes) goes into `tag` instead of behind it: for packets that sit back to back in a
    /// batch. Returns where to send the packet followed by the tag.
    pub fn on_source_detached(
        &mut self,
        kind: MediaKind,
        packet: &mut [u8],
        tag: &mut [u8],
        now: Instant,
    ) -> Option<SocketAddr> {
        if self.ringing {
            return None;
        }
        let remote = self.remote?;
        let track = self.track_mut(kind)?;
        let mut view = RtpPacket::new_checked(&mut *packet).ok()?;
        if !track.out.prepare(&mut view) {
            return None;
        }
        self.tx.protect_detached(packet, tag).ok()?;
        self.last_sent = now;
        Some(remote)
    }

    /// Whether `addr` is the remote or one of the candidates.
    pub fn knows(&self, addr: SocketAddr) -> bool {
        self.remote == Some(addr) || self.checks.iter().any(|c| c.candidate.addr == addr)
    }

    /// Whether the call has neither a remote nor candidates: it latches onto whoever sends
    /// the first authenticated packet.
    pub fn waiting(&self) -> bool {
        self.remote.is_none() && self.checks.is_empty()
    }

    /// Whether no media has come in for the media timeout: then, as while waiting, a stream
    /// from anywhere that authenticates may take the call over (a peer that moved and
    /// restarted its stream).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The addresses the call sends to or checks: the remote and the candidates.
    pub fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.remote
            .into_iter()
            .chain(self.checks.iter().map(|c| c.candidate.addr))
    }

    /// How many tracks the call has.
    pub fn track_count(&self) -> usize {
        usize::from(self.audio.is_some()) + usize::from(self.video.is_some())
    }

    /// [`Self::on_network`] for an SRTP or SRTCP packet that may belong to another call on a
    /// shared socket: one that does not authenticate here is left as it was and not counted,
    /// and `None` is returned.
    pub fn try_claim(&mut self, buf: &mut [u8], from: SocketAddr, now: Instant) -> Option<Inbound> {
        match self.receive(buf, from, now, false) {
            Inbound::Dropped(_) => None,
            inbound => Some(inbound),
        }
    }

    /// A datagram received from `from`, filling `buf`. Media is decrypted in place.
    pub fn on_network(&mut self, buf: &mut [u8], from: SocketAddr, now: Instant) -> Inbound {
        self.receive(buf, from, now, true)
    }

    /// `on_network`, counting drops only if `count`.
    fn receive(&mut self, buf: &mut [u8], from: SocketAddr, now: Instant, count: bool) -> Inbound {
        let reason = match classify(buf) {
            PacketKind::Stun => {
                self.on_stun(buf, from, now);
                return Inbound::Consumed;
            }
            PacketKind::Rtp => match self.on_rtp(buf, from, now) {
                Ok(inbound) => return inbound,
                Err(dropped) => dropped,
            },
            PacketKind::Rtcp => match self.rtcp_rx.unprotect(buf) {
                Ok(n) => {
                    self.on_authenticated(from, "media");
                    self.on_rtcp(&buf[..n], now);
                    return Inbound::Consumed;
                }
                Err(e) => (MediaKind::Audio, drop_reason(&e)),
            },
            PacketKind::Dtls | PacketKind::Other => (MediaKind::Audio, DropReason::Other),
        };
        if count {
            self.drop(reason.0, reason.1)
        } else {
            Inbound::Dropped(reason.1)
        }
    }

    /// An SRTP packet: `Err` names the track and the reason to drop it.
    fn on_rtp(
        &mut self,
        buf: &mut [u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Inbound, (MediaKind, DropReason)> {
        let Some(kind) = self.kind_of(buf) else {
            return Err((MediaKind::Audio, DropReason::Other));
        };
        let len = self
            .rx
            .unprotect(buf)
            .map_err(|e| (kind, drop_reason(&e)))?;
        self.on_authenticated(from, "media");
        let arrival = now.duration_since(self.epoch.0).as_secs_f64();
        let packet = RtpPacket::new_checked(&buf[..len]).expect("authenticated packets parse");
        let track = self
            .track_mut(kind)
            .expect("kind_of returns existing tracks");
        track.inb.remote_ssrc = Some(packet.ssrc());
        track.inb.stats.record(
            packet.seq().0,
            packet.timestamp(),
            packet.payload().len(),
            arrival,
        );
        let digit = (track.params.dtmf_payload_type == Some(packet.payload_type()))
            .then(|| track.dtmf.on_packet(packet.timestamp(), packet.payload()));
        self.last_media_in = now;
        self.timed_out = false;
        match digit {
            // Telephone-events are told as events, never recorded or forwarded as audio.
            Some(digit) => {
                if let Some(digit) = digit {
                    self.events.push_back(CallEvent::Dtmf { digit });
                }
                Ok(Inbound::Consumed)
            }
            None => Ok(Inbound::Media { kind, len }),
        }
    }

    /// The track a received packet belongs to, by payload type; with one track, that one.
    fn kind_of(&self, buf: &[u8]) -> Option<MediaKind> {
        let pt = RtpPacket::new_checked(buf).ok()?.payload_type();
        match (&self.audio, &self.video) {
            (Some(a), _) if a.params.payload_type == pt => Some(MediaKind::Audio),
            (Some(a), _) if a.params.dtmf_payload_type == Some(pt) => Some(MediaKind::Audio),
            (_, Some(v)) if v.params.payload_type == pt => Some(MediaKind::Video),
            (Some(_), None) => Some(MediaKind::Audio),
            (None, Some(_)) => Some(MediaKind::Video),
            _ => None,
        }
    }

    fn drop(&mut self, kind: MediaKind, reason: DropReason) -> Inbound {
        let track = match kind {
            MediaKind::Video if self.video.is_some() => self.video.as_mut(),
            _ => self.audio.as_mut().or(self.video.as_mut()),
        };
        if let Some(t) = track {
            match reason {
                DropReason::Auth => t.dropped.auth += 1,
                DropReason::Replay => t.dropped.replay += 1,
                DropReason::Other => t.dropped.other += 1,
            }
        }
        Inbound::Dropped(reason)
    }

    /// An authenticated packet came from `from`: latch onto it.
    fn on_authenticated(&mut self, from: SocketAddr, how: &'static str) {
        if self.remote != Some(from) {
            let previous = self.remote.replace(from);
            self.events.push_back(CallEvent::RemoteChanged {
                from: previous,
                to: from,
                how,
            });
        }
        if self.state != CallState::Connected {
            self.state = CallState::Connected;
            self.events
                .push_back(CallEvent::Connected { remote: from, how });
        }
        if how == "media" {
            self.checks.clear();
        }
    }

    fn on_stun(&mut self, buf: &[u8], from: SocketAddr, now: Instant) {
        match stun::parse(buf) {
            Some(Binding::Request(txid)) => self.transmits.push_back(Transmit {
                dest: from,
                data: stun::success(txid, from),
            }),
            Some(Binding::Success(txid, _)) => {
                let answered = self.checks.iter().any(|c| {
                    c.txid == txid && c.candidate.addr == from && now <= self.checks_until
                });
                if answered {
                    self.checks.clear();
                    self.on_authenticated(from, "stun");
                }
            }
            Some(Binding::Indication) => {}
            None => {
                self.drop(MediaKind::Audio, DropReason::Other);
            }
        }
    }

    fn on_rtcp(&mut self, plain: &[u8], now: Instant) {
        let Some(received) = rtcp::parse(plain) else {
            return;
        };
        for (ssrc, lsr) in received.sender_reports {
            for t in [self.audio.as_mut(), self.video.as_mut()]
                .into_iter()
                .flatten()
            {
                if t.inb.remote_ssrc == Some(Ssrc(ssrc)) {
                    t.inb.last_sr = Some((lsr, now));
                }
            }
        }
        let ours: Vec<Ssrc> = [&self.audio, &self.video]
            .into_iter()
            .flatten()
            .map(|t| t.out.ssrc())
            .collect();
        let now_mid = self.ntp_middle(now);
        for block in received.blocks {
            if block.lsr != 0 && ours.contains(&Ssrc(block.ssrc)) {
                let rtt = now_mid.wrapping_sub(block.lsr).wrapping_sub(block.dlsr);
                if rtt < 0x8000_0000 {
                    self.rtt_ms = Some(f64::from(rtt) * 1000.0 / 65536.0);
                }
            }
        }
    }

    fn ntp(&self, now: Instant) -> u64 {
        let wall = self.epoch.1 + now.saturating_duration_since(self.epoch.0);
        let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_unix.as_secs() + NTP_UNIX_OFFSET;
        let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    fn ntp_middle(&self, now: Instant) -> u32 {
        (self.ntp(now) >> 16) as u32
    }

    /// Whether datagrams or events wait to be polled.
    pub fn has_output(&self) -> bool {
        !self.transmits.is_empty() || !self.events.is_empty()
    }

    /// Hints to the CPU the state that [`Self::on_source_detached`] for track `kind` reads
    /// (see [`SrtpContext::prefetch`]). Changes nothing.
    pub fn prefetch_source(&self, kind: MediaKind) {
        use crate::prefetch::{prefetch, prefetch_bytes};
        prefetch(&self.ringing);
        prefetch(&self.remote);
        prefetch(&self.last_sent);
        if let Some(track) = self.track(kind) {
            prefetch_bytes(track, 512);
        }
        self.tx.prefetch();
    }

    /// Hints the session's own fields that the other prefetches read to find the rest (the
    /// tracks' variants, the SRTP contexts' tables), so they are at hand a little later.
    pub fn prefetch_outer(&self) {
        crate::prefetch::prefetch(&self.audio);
        crate::prefetch::prefetch(&self.video);
        self.tx.prefetch_outer();
        self.rx.prefetch_outer();
    }

    /// Hints to the CPU the state that [`Self::on_network`] reads for a media packet. Changes
    /// nothing.
    pub fn prefetch_network(&self) {
        use crate::prefetch::{prefetch, prefetch_bytes};
        prefetch(&self.remote);
        prefetch(&self.state);
        prefetch(&self.checks);
        prefetch(&self.epoch);
        prefetch(&self.last_media_in);
        prefetch(&self.timed_out);
        prefetch(&self.transmits);
        prefetch(&self.events);
        for track in [&self.audio, &self.video].into_iter().flatten() {
            prefetch_bytes(track, 512);
        }
        self.rx.prefetch();
    }

    /// The next datagram to send that the session made itself (STUN, RTCP, keepalives).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    fn media_timeout(&self) -> Duration {
        if self.peer_muted {
            self.timers.media_timeout_held
        } else {
            self.timers.media_timeout
        }
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        // Only deadlines that `handle_timeout` (or `poll_comfort`) moves on when they pass:
        // keepalives and comfort silence wait for a remote (and comfort for the answer).
        let mut next = self.next_rtcp;
        if self.remote.is_some() {
            next = next.min(self.last_sent + self.timers.keepalive);
        }
        if !self.timed_out {
            next = next.min(self.last_media_in + self.media_timeout());
        }
        for c in &self.checks {
            next = next.min(c.next_send);
        }
        for t in [self.next_comfort, self.next_dtmf].into_iter().flatten() {
            if self.remote.is_some() && !self.ringing {
                next = next.min(t);
            }
        }
        next
    }

    /// Starts sending `events` (DTMF digits, see [`crate::media::dtmf::parse_digits`]) on the
    /// audio track as telephone-events, each a tone of `duration_ms`; the audio source's
    /// packets are held back meanwhile.
    pub fn send_dtmf(
        &mut self,
        events: Vec<u8>,
        duration_ms: u32,
        now: Instant,
    ) -> Result<(), DtmfRefused> {
        let track = self.audio.as_mut().ok_or(DtmfRefused::NoAudio)?;
        if track.params.dtmf_payload_type.is_none() {
            return Err(DtmfRefused::NoPayloadType);
        }
        if track.dtmf_out.is_some() {
            return Err(DtmfRefused::Busy);
        }
        let sender = DtmfSender::new(
            events,
            duration_ms,
            track.params.ptime_ms,
            track.params.clock_rate,
        );
        track.dtmf_out = Some((sender, track.out.next_timestamp()));
        track.out.set_replaced(true);
        self.next_dtmf = Some(now);
        Ok(())
    }

    /// The next telephone-event packet of the digits being sent, written into `buf` and
    /// protected; returns its length and destination. Call after every timer run until it
    /// returns `None`.
    pub fn poll_dtmf(&mut self, buf: &mut [u8], now: Instant) -> Option<(usize, SocketAddr)> {
        let due = self.next_dtmf.filter(|&t| t <= now)?;
        let remote = self.remote.filter(|_| !self.ringing)?;
        let track = self.audio.as_mut()?;
        let ptime = track.out.ptime();
        let Some((sender, base)) = track.dtmf_out.as_mut() else {
            self.next_dtmf = None;
            return None;
        };
        // Paced by absolute deadlines; after a stall, resume from now rather than burst.
        let next = due + ptime;
        self.next_dtmf = Some(if next + ptime < now {
            now + ptime
        } else {
            next
        });
        let packet = match sender.next_packet() {
            Some(Some(p)) => p,
            Some(None) => return None,
            None => {
                track.dtmf_out = None;
                track.out.set_replaced(false);
                self.next_dtmf = None;
                return None;
            }
        };
        let pt = track.params.dtmf_payload_type?;
        let ts = base.wrapping_add(packet.timestamp_offset);
        let len = track
            .out
            .telephone_event(buf, pt, packet.marker, ts, &packet.payload);
        let n = self.tx.protect(buf, len).ok()?;
        self.last_sent = now;
        Some((n, remote))
    }

    /// Runs the timers due at `now`: candidate checks, keepalives, RTCP reports, the media
    /// timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now > self.checks_until {
            self.checks.clear();
        }
        for c in &mut self.checks {
            if c.next_send <= now {
                self.transmits.push_back(Transmit {
                    dest: c.candidate.addr,
                    data: stun::request(c.txid),
                });
                c.next_send = now + c.interval;
                c.interval = (c.interval * 2).min(MAX_CHECK_INTERVAL);
            }
        }
        if let Some(remote) = self.remote {
            if now >= self.next_rtcp {
                self.send_report(remote, now);
                self.next_rtcp = now + self.timers.rtcp_interval;
            }
            if now.saturating_duration_since(self.last_sent) >= self.timers.keepalive {
                self.transmits.push_back(Transmit {
                    dest: remote,
                    data: stun::indication(),
                });
                self.last_sent = now;
            }
        } else if now >= self.next_rtcp {
            self.next_rtcp = now + self.timers.rtcp_interval;
        }
        let silent = now.saturating_duration_since(self.last_media_in);
        if !self.timed_out && silent >= self.media_timeout() {
            self.timed_out = true;
            self.events.push_back(CallEvent::MediaTimeout {
                silent_s: silent.as_secs(),
                held: self.peer_muted,
            });
        }
    }

    fn send_report(&mut self, remote: SocketAddr, now: Instant) {
        let ntp = self.ntp(now);
        let mut blocks = Vec::new();
        let mut sent = SendStats::default();
        let mut rtp_time = 0;
        let mut sender_ssrc = None;
        for t in [self.audio.as_mut(), self.video.as_mut()]
            .into_iter()
            .flatten()
        {
            sender_ssrc.get_or_insert(t.out.ssrc());
            if t.out.sent.packets > 0 && sent.packets == 0 {
                rtp_time = t.out.last_timestamp();
            }
            sent.packets += t.out.sent.packets;
            sent.bytes += t.out.sent.bytes;
            if let (Some(ssrc), true) = (t.inb.remote_ssrc, t.inb.stats.started()) {
                let (lsr, dlsr) = t.inb.last_sr.map_or((0, 0), |(lsr, at)| {
                    (
                        lsr,
                        (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32,
                    )
                });
                blocks.push(ReportBlock {
                    ssrc: ssrc.0,
                    fraction_lost: t.inb.stats.take_fraction_lost(),
                    total_lost: t.inb.stats.lost().min(0x7f_ffff) as u32,
                    highest_seq: t.inb.stats.extended_max(),
                    jitter: t.inb.stats.jitter_units(),
                    lsr,
                    dlsr,
                });
            }
        }
        let Some(ssrc) = sender_ssrc else { return };
        let sender = (sent.packets > 0).then_some(SenderInfo {
            ntp,
            rtp_time,
            packets: sent.packets as u32,
            octets: sent.bytes as u32,
        });
        let mut packet = rtcp::report(ssrc.0, sender, &blocks);
        let len = packet.len();
        packet.resize(len + self.rtcp_tx.overhead(), 0);
        if let Ok(n) = self.rtcp_tx.protect(&mut packet, len) {
            packet.truncate(n);
            self.transmits.push_back(Transmit {
                dest: remote,
                data: packet,
            });
            self.last_sent = now;
        }
    }

    /// Counts a datagram of the call that the kernel refused to send.
    pub fn on_send_failed(&mut self) {
        self.send_errors += 1;
    }

    /// A snapshot of the call's statistics.
    pub fn stats(&self) -> CallStats {
        let track = |t: &Option<Track>| {
            t.as_ref().map(|t| TrackStats {
                sent: t.out.sent,
                received: t.inb.stats.snapshot(),
                dropped: t.dropped,
                muted: t.out.gated(),
                gated: t.out.gated_drops,
            })
        };
        CallStats {
            call_id: self.call_id.to_string(),
            state: self.state(),
            remote: self.remote,
            audio: track(&self.audio),
            video: track(&self.video),
            rtt_ms: self.rtt_ms.map(|r| (r * 1000.0).round() / 1000.0),
            peer_muted: self.peer_muted,
            peer_video: self.peer_video,
            send_errors: self.send_errors,
            bridge: None,
        }
    }
}

fn drop_reason(e: &SrtpError) -> DropReason {
    match e {
        SrtpError::AuthenticationFailed => DropReason::Auth,
        SrtpError::Replayed { .. } | SrtpError::TooOld { .. } => DropReason::Replay,
        _ => DropReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keying::sdes;

    fn session(now: Instant) -> CallSession {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
        let setup = CallSetup {
            call_id: "T".into(),
            keys: sdes::call_keys("AES_CM_128_HMAC_SHA1_80", key, key).unwrap(),
            srtp: SrtpOptions::default(),
            candidates: vec![Candidate {
                addr: "127.0.0.1:9".parse().unwrap(),
                priority: 1,
            }],
            audio: Some(TrackSetup {
                params: TrackParams {
                    payload_type: 111,
                    clock_rate: 48000,
                    ptime_ms: 20,
                    dtmf_payload_type: Some(101),
                    codec: Some(crate::media::codec::CodecKind::Opus),
                },
                ssrc: Ssrc(1),
            }),
            video: None,
            timers: CallTimers {
                check_timeout: Duration::from_secs(1),
                keepalive: Duration::from_secs(100),
                rtcp_interval: Duration::from_secs(100),
                media_timeout: Duration::from_secs(10),
                media_timeout_held: Duration::from_secs(30),
            },
            ringing: false,
            mute_mode: MuteMode::Silence,
        };
        CallSession::new(setup, now, SystemTime::now()).unwrap()
    }

    fn timeouts(s: &mut CallSession) -> Vec<(u64, bool)> {
        std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                CallEvent::MediaTimeout { silent_s, held } => Some((silent_s, held)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn media_timeout_uses_the_longer_limit_while_the_peer_is_held() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.set_peer_muted(true);
        s.handle_timeout(t0 + Duration::from_secs(11));
        assert_eq!(timeouts(&mut s), vec![]);
        assert_eq!(
            s.poll_timeout(),
            t0 + Duration::from_secs(30).min(Duration::from_secs(100))
        );
        s.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(timeouts(&mut s), vec![(31, true)]);

        let mut s = session(t0);
        s.handle_timeout(t0 + Duration::from_secs(11));
        assert_eq!(timeouts(&mut s), vec![(11, false)]);
        s.handle_timeout(t0 + Duration::from_secs(12));
        assert_eq!(timeouts(&mut s), vec![], "raised once until media resumes");
    }

    #[test]
    fn every_deadline_moves_on_once_handled() {
        let t0 = Instant::now();
        // Waiting (no candidates): no keepalive to send; ringing and muted: no comfort yet.
        let mut waiting = session(t0);
        waiting.checks.clear();
        waiting.remote = None;
        let mut ringing = session(t0);
        ringing.ringing = true;
        ringing.set_gated(MediaKind::Audio, true, t0);
        for s in [&mut waiting, &mut ringing] {
            let mut now = t0;
            for _ in 0..50 {
                now = s.poll_timeout().max(now);
                s.handle_timeout(now);
                let mut buf = [0u8; 64];
                while s.poll_comfort(&mut buf, now).is_some() {}
                assert!(
                    s.poll_timeout() > now,
                    "a deadline at {now:?} did not move on"
                );
            }
            assert!(
                now > t0 + Duration::from_secs(100),
                "timers ran for their intervals"
            );
        }
    }

    #[test]
    fn comfort_packets_are_paced_by_absolute_deadlines() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.set_gated(MediaKind::Audio, true, t0);
        let mut buf = [0u8; 64];
        let mut sent = 0;
        // A timer that fires late still sends one packet per due deadline, then catches up
        // without bursting past the clock.
        for ms in [0u64, 20, 45, 60, 100] {
            while s
                .poll_comfort(&mut buf, t0 + Duration::from_millis(ms))
                .is_some()
            {
                sent += 1;
            }
        }
        assert_eq!(sent, 6, "deadlines 0, 20, 40, 60, 80, 100 ms");
        s.set_gated(MediaKind::Audio, false, t0 + Duration::from_millis(110));
        assert!(
            s.poll_comfort(&mut buf, t0 + Duration::from_secs(1))
                .is_none()
        );
    }
}
