//! The endpoint: one worker's calls, without I/O. It owns the calls, the routing tables that
//! lead a datagram to its call, the policy for streams not seen before, and every timer.
//!
//! Datagrams, commands and the time go in; what comes out is polled: transmits (which socket,
//! to where, which bytes), file writes for recordings, typed events, and when to call again.
//! The worker's driver owns the sockets and does the system calls (quinn-proto's `Endpoint`
//! and str0m's `Rtc` are the models).
//!
//! A datagram takes two steps, so that a driver handling a batch can prefetch the state of
//! the datagrams a few ahead while it handles the one at hand: [`Endpoint::route`] finds where
//! it goes from the socket it came in on and, on a shared port, its remote address and SSRC;
//! [`Endpoint::handle`] carries it out, in place: SRTP from a peer is decrypted where it lies
//! and handed to the track's sink, plain RTP from a producer is rewritten and protected where
//! it lies (its tag written to a trailer the driver keeps), and the answer says what to send.
//!
//! One behaviour for both socket layouts: a datagram belongs to a call when its stream
//! (remote address and SSRC) is one the call has seen, or when exactly one call may claim a
//! stream not seen before (its SSRC is the call's, the sender is the call's remote or
//! candidate, or no media has come to the call yet or it timed out). A call's own media socket
//! names that one call; on a shared port the tables do. A datagram that no call may claim is
//! dropped and counted as unclaimed, without being decrypted; one that its call refuses is
//! counted by the call (auth, replay, other).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rustc_hash::FxHashMap;

use super::bridge::{BridgeInput, BridgeSpec, CallBridge};
use super::event::Event;
use super::remote_policy::RemotePolicy;
use super::session::{
    CallEvent, CallSession, CallSetup, CallStats, Candidate, DtmfRefused, Inbound,
};
use super::sink::{FileWrite, Recording, RecordingFormat};
use super::source::{ClipPoll, ClipSource};
use super::token_bucket::TokenBucket;
use super::track::{MediaKind, TrackParams};
use super::trial_budget::TrialBudget;
use crate::media::AudioClip;
use crate::rtp::{PacketKind, Ssrc, classify, stream_ssrc};
use crate::srtp::{MasterKey, SrtpError, SrtpProfile};

/// Largest datagram the endpoint handles: what a driver's receive slot holds, and what the
/// endpoint's own packets may take.
pub const MAX_DATAGRAM: usize = 2048;
/// Peer streams (remote address and SSRC) a call remembers; a new one beyond that replaces
/// the oldest.
const MAX_PEER_STREAMS: usize = 8;
/// Bytes of the queue of packets the endpoint makes itself (STUN, RTCP, keepalives, comfort
/// silence, clips) between two drains by the driver.
const OUT_BYTES: usize = 256 * 1024;
/// Packets in that queue.
const OUT_PACKETS: usize = 2048;
/// Calls a datagram of a stream no call knows, from an address no call knows, is tried
/// against at most (calls waiting for their first packet, in turn).
const MAX_TRIALS_PER_DATAGRAM: usize = 4;

/// Bounds on the work datagrams from unknown senders may cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointLimits {
    /// Trial authentications one source address may cost a second (twice as many at once).
    pub trials_per_source_per_s: u64,
    /// Bytes of STUN Binding responses the endpoint sends a second at most.
    pub stun_reply_bytes_per_s: u64,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        EndpointLimits {
            trials_per_source_per_s: 100,
            stun_reply_bytes_per_s: 64 * 1024,
        }
    }
}

/// A socket, as the driver names it to the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u32);

/// A call, as the daemon names it to the endpoint (unique for the daemon's life).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallNo(pub u64);

/// What a shared socket of the worker carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedSocket {
    /// Media of many calls, told apart by remote address and SSRC.
    Media,
    /// Plain RTP from the producers of many tracks, told apart by the producer's SSRC; sinks
    /// of those tracks are fed from it.
    Local,
}

/// What a socket is to the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A call's own media socket.
    Media(Slot),
    /// A track's own local port: its producer sends there, its sink is fed from it.
    Local(Slot, MediaKind),
    /// A shared socket.
    Shared(SharedSocket),
}

/// Where a track's producer sends plain RTP. `S` names sockets: [`SocketId`] for the
/// endpoint, something else for whoever prepares a call before its sockets have ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpSource<S = SocketId> {
    /// A port of the track's own: whatever arrives there is the track's.
    Own(S),
    /// The worker's shared producer port: the packets whose SSRC is `ssrc`.
    Shared {
        /// The shared local socket.
        socket: S,
        /// The producer's SSRC.
        ssrc: Ssrc,
    },
}

/// A track of a call being added: where its media comes from and goes to.
#[derive(Debug)]
pub struct TrackPorts<S = SocketId> {
    /// A local producer of plain RTP.
    pub rtp_source: Option<RtpSource<S>>,
    /// A clip that plays instead of the producer (a file, silence).
    pub clip: Option<ClipSource>,
    /// Where decrypted RTP goes, and from which socket.
    pub sink: Option<(S, SocketAddr)>,
    /// The recording of what the track receives.
    pub recording: Option<Recording>,
}

impl<S> Default for TrackPorts<S> {
    fn default() -> Self {
        TrackPorts {
            rtp_source: None,
            clip: None,
            sink: None,
            recording: None,
        }
    }
}

/// A call to add: the session's setup and the sockets the driver opened for it.
#[derive(Debug)]
pub struct CallSpec<S = SocketId> {
    /// The daemon's name for it.
    pub no: CallNo,
    /// The media session.
    pub setup: CallSetup,
    /// The media socket facing the peer (its own, or a shared one).
    pub media: S,
    /// Sockets that belong to this call alone (its media socket in the per-call layout, its
    /// tracks' own local ports), closed when it ends.
    pub own_sockets: Vec<S>,
    /// The audio track's ports (the setup must have an audio track for it to be used).
    pub audio: TrackPorts<S>,
    /// The video track's ports.
    pub video: TrackPorts<S>,
}

impl<S: Copy> CallSpec<S> {
    /// The same call with its sockets named by `id`.
    pub fn map_sockets<T: Copy>(self, mut id: impl FnMut(S) -> T) -> CallSpec<T> {
        let mut track = |t: TrackPorts<S>| TrackPorts {
            rtp_source: t.rtp_source.map(|s| match s {
                RtpSource::Own(s) => RtpSource::Own(id(s)),
                RtpSource::Shared { socket, ssrc } => RtpSource::Shared {
                    socket: id(socket),
                    ssrc,
                },
            }),
            clip: t.clip,
            sink: t.sink.map(|(s, a)| (id(s), a)),
            recording: t.recording,
        };
        let (audio, video) = (track(self.audio), track(self.video));
        CallSpec {
            no: self.no,
            setup: self.setup,
            media: id(self.media),
            own_sockets: self.own_sockets.into_iter().map(&mut id).collect(),
            audio,
            video,
        }
    }
}

/// Why the endpoint refused something.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No call with that number.
    #[error("no such call")]
    NoSuchCall,
    /// The call has no track of that kind.
    #[error("the call has no {} track", .0.name())]
    NoSuchTrack(MediaKind),
    /// Another call's producer already uses that SSRC on the shared producer port.
    #[error("another call's producer already sends SSRC {0} to the shared port")]
    ProducerSsrcTaken(Ssrc),
    /// The keys were refused.
    #[error("bad keying: {0}")]
    Keying(SrtpError),
    /// Digits cannot be sent.
    #[error("{0}")]
    Dtmf(#[from] DtmfRefused),
    /// The bridge could not be made, or the call has none.
    #[error("{0}")]
    Bridge(String),
    /// The track cannot be recorded so.
    #[error("{0}")]
    Recording(String),
    /// A bot speaks on the call's audio track: a clip has no turn.
    #[error("the audio track is bridged to a bot")]
    Bridged,
}

/// A datagram to send: from `socket` to `dest`, `len` bytes (of the datagram handed to
/// [`Endpoint::handle`], or of [`Endpoint::outgoing`]'s buffer at `start`), then `trailer`
/// bytes of the trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The call it is sent for (told of a refused send by [`Endpoint::on_send_failed`]).
    pub call: CallNo,
    /// The socket to send from.
    pub socket: SocketId,
    /// Where to.
    pub dest: SocketAddr,
    /// Where the bytes start (0 for a handled datagram).
    pub start: usize,
    /// How many bytes.
    pub len: usize,
    /// Bytes of trailer (the detached SRTP tag) behind them.
    pub trailer: usize,
}

/// Where a datagram goes, found by [`Endpoint::route`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route(RouteKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteKind {
    /// A stream the call in this slot has seen, on a shared port.
    Known(Slot),
    /// The call's own media socket: the call checks the stream itself.
    Call(Slot),
    /// A shared media port, a stream not seen before (or STUN).
    Claim,
    /// A track's producer.
    Source(Slot, MediaKind),
    /// Nothing here takes it.
    Unclaimed,
}

/// What became of a handled datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send it on, as [`Transmit`] says (its bytes stay where they were handed in).
    Send(Transmit),
    /// Taken (STUN, RTCP, recorded only, gated) or refused by its call, which counted it.
    Done,
    /// No call may claim it: dropped and counted.
    Unclaimed,
}

/// Counters of the endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    /// Datagrams no call could claim, dropped without decryption (from addresses the remote
    /// policy refuses, and plain RTP from addresses that are no producer's, among them).
    pub unclaimed: u64,
    /// Datagrams dropped because their source had spent its trial authentications, or the
    /// STUN reply budget was spent.
    pub limited: u64,
}

type Slot = usize;

/// Why calls were found that may claim a new stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimBasis {
    /// The sender is their remote or a candidate.
    Address,
    /// The SSRC is the call's, from an address it does not know.
    Ssrc,
    /// They wait for a first packet (or timed out), from anyone.
    Open,
}

/// A stream's key in the shared ports' table: its remote address and SSRC as plain integers,
/// so that the per-datagram lookup hashes and compares a few words (an IPv4 address is kept
/// IPv4-mapped: a shared port's IPv6 socket never receives those).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct StreamKey {
    ip: u128,
    port: u16,
    ssrc: u32,
}

impl StreamKey {
    fn new(from: SocketAddr, ssrc: Ssrc) -> Self {
        let ip = match from.ip() {
            std::net::IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            std::net::IpAddr::V6(a) => u128::from(a),
        };
        StreamKey {
            ip,
            port: from.port(),
            ssrc: ssrc.0,
        }
    }
}

/// A track's sources and sinks.
#[derive(Debug, Default)]
struct TrackIo {
    rtp_source: Option<RtpSource>,
    /// The track's own clip source (silence, a file), from the call's setup.
    own_clip: Option<ClipSource>,
    /// A clip played over the track's own source (`call.play`) until it ends; the own
    /// source then goes on.
    played: Option<ClipSource>,
    sink: Option<(SocketId, SocketAddr)>,
    recording: Option<Recording>,
}

impl TrackIo {
    /// The clip that speaks now: a played one, else the track's own.
    fn clip(&self) -> Option<&ClipSource> {
        self.played.as_ref().or(self.own_clip.as_ref())
    }

    fn clip_mut(&mut self) -> Option<&mut ClipSource> {
        self.played.as_mut().or(self.own_clip.as_mut())
    }
}

struct Entry {
    no: CallNo,
    session: CallSession,
    media: SocketId,
    shared_media: bool,
    own_sockets: Vec<SocketId>,
    audio: TrackIo,
    video: TrackIo,
    /// Streams seen from the peer, oldest first.
    streams: Vec<(SocketAddr, Ssrc)>,
    /// Addresses under which `by_addr` lists this call (shared media only).
    addrs: Vec<SocketAddr>,
    /// Whether `open` lists this call.
    open: bool,
    /// The generation of the call's live entry in the timer heap, and its deadline.
    timer: Option<(u64, Instant)>,
    /// The bot bridge of its audio, if one is attached.
    bridge: Option<Box<CallBridge>>,
}

impl Entry {
    fn io(&self, kind: MediaKind) -> &TrackIo {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    fn io_mut(&mut self, kind: MediaKind) -> &mut TrackIo {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }

    /// Whether this call may claim a stream it has not seen: its SSRC is one of the call's
    /// (the peer moved), the sender is the remote or a candidate, or the call is open.
    fn may_claim(&self, from: SocketAddr, ssrc: Ssrc) -> bool {
        self.streams.iter().any(|s| s.1 == ssrc) || self.session.knows(from) || self.is_open()
    }

    /// Whether a stream from anywhere may be this call's: no media has come yet (the peer
    /// may send from another address than it was checked on), or it stopped coming (the peer
    /// may have moved and restarted its stream).
    fn is_open(&self) -> bool {
        self.streams.is_empty() || self.session.timed_out()
    }

    /// When the call's timers next need it: the session's and the clips' (not the audio
    /// clip's while a bot speaks instead).
    fn next_deadline(&self) -> Instant {
        let mut due = self.session.poll_timeout();
        if let Some(b) = &self.bridge {
            due = due.min(b.next_deadline());
        }
        for kind in [MediaKind::Audio, MediaKind::Video] {
            if self.bot_speaks(kind) {
                continue;
            }
            if let Some(t) = self.io(kind).clip().and_then(ClipSource::next_deadline) {
                due = due.min(t);
            }
        }
        due
    }

    /// Whether a bot speaks on this track instead of its sources (a bridged audio track).
    fn bot_speaks(&self, kind: MediaKind) -> bool {
        kind == MediaKind::Audio && self.bridge.is_some()
    }

    /// Gives the track back to its own source after something spoke over it (a played clip,
    /// a bot): its clip goes on from where it stopped, and the peer sees timestamps go on
    /// from the last packet sent.
    fn resume_own_source(&mut self, kind: MediaKind, now: Instant) {
        if let Some(own) = self.io_mut(kind).own_clip.as_mut() {
            own.resume(now);
        }
        self.session.switch_source(kind);
    }

    /// Hints to the CPU the state a datagram of this call reads, in two steps (see
    /// [`crate::prefetch`]): `outer`, a few datagrams ahead, the fields that lead to the rest.
    fn prefetch(&self, source: Option<MediaKind>, outer: bool) {
        use crate::prefetch::prefetch;
        match (outer, source) {
            (true, _) => {
                prefetch(&self.streams);
                self.session.prefetch_outer();
            }
            (false, Some(kind)) => {
                prefetch(self.io(kind));
                self.session.prefetch_source(kind);
            }
            (false, None) => {
                prefetch(&self.audio);
                prefetch(self.streams.as_slice());
                self.session.prefetch_network();
            }
        }
    }
}

/// Packets the endpoint made itself, back to back in one buffer, until the driver sends them.
struct OutQueue {
    bytes: Box<[u8]>,
    used: usize,
    transmits: Vec<Transmit>,
}

impl OutQueue {
    fn has_room(&self) -> bool {
        self.bytes.len() - self.used >= MAX_DATAGRAM && self.transmits.len() < OUT_PACKETS
    }

    /// Queues what `write` puts into the free space (its length, or `None` for nothing).
    fn push(
        &mut self,
        call: CallNo,
        socket: SocketId,
        dest: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) {
        let start = self.used;
        let end = (start + MAX_DATAGRAM).min(self.bytes.len());
        if let Some(len) = write(&mut self.bytes[start..end]) {
            self.used += len;
            self.transmits.push(Transmit {
                call,
                socket,
                dest,
                start,
                len,
                trailer: 0,
            });
        }
    }
}

/// One worker's calls, routing tables and timers, with time passed in.
pub struct Endpoint {
    calls: Vec<Option<Entry>>,
    /// The traffic of the calls that ended.
    ended: super::TrafficTotals,
    free: Vec<Slot>,
    by_no: FxHashMap<CallNo, Slot>,
    roles: Vec<Option<Role>>,
    /// (remote address, SSRC) → call, for shared media ports.
    by_peer: FxHashMap<StreamKey, Slot>,
    /// Peer SSRC → call, for a known stream arriving from a new address on a shared port.
    by_ssrc: FxHashMap<Ssrc, Slot>,
    /// Remote and candidate addresses → calls on shared media ports (a superset: checks
    /// expire; each use asks the call).
    by_addr: FxHashMap<SocketAddr, Vec<Slot>>,
    /// Calls on shared media ports that may be open to a stream from anywhere (a superset).
    open: Vec<Slot>,
    /// (shared local socket, producer SSRC) → track.
    by_source: FxHashMap<(SocketId, Ssrc), (Slot, MediaKind)>,
    /// Deadlines: (when, call, generation); an entry whose generation is not its call's
    /// `timer` any more was superseded.
    timers: BinaryHeap<Reverse<(Instant, Slot, u64)>>,
    next_timer: u64,
    /// The time last passed in.
    now: Option<Instant>,
    /// Scratch list of the calls that may claim a stream.
    claimants: Vec<Slot>,
    /// Where the next datagram's trials start in `open`, so that every waiting call gets
    /// its turn.
    open_cursor: usize,
    /// Which remotes and producers are acceptable.
    policy: Arc<RemotePolicy>,
    /// Trial authentications left per source.
    trials: TrialBudget,
    /// STUN reply bytes left.
    stun_replies: TokenBucket,
    /// Calls whose session holds packets that did not fit the out queue.
    backlog: VecDeque<Slot>,
    out: OutQueue,
    events: VecDeque<Event>,
    file_writes: Vec<FileWrite>,
    counters: EndpointCounters,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::new(Arc::default(), EndpointLimits::default())
    }
}

impl Endpoint {
    /// An endpoint with no calls and no sockets, checking remotes and producers against
    /// `policy`.
    pub fn new(policy: Arc<RemotePolicy>, limits: EndpointLimits) -> Self {
        Endpoint {
            calls: Vec::new(),
            ended: super::TrafficTotals::default(),
            free: Vec::new(),
            by_no: FxHashMap::default(),
            roles: Vec::new(),
            by_peer: FxHashMap::default(),
            by_ssrc: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            open: Vec::new(),
            by_source: FxHashMap::default(),
            timers: BinaryHeap::new(),
            next_timer: 0,
            now: None,
            claimants: Vec::new(),
            open_cursor: 0,
            policy,
            trials: TrialBudget::new(
                limits.trials_per_source_per_s,
                limits.trials_per_source_per_s * 2,
            ),
            stun_replies: TokenBucket::new(
                limits.stun_reply_bytes_per_s,
                limits.stun_reply_bytes_per_s,
            ),
            backlog: VecDeque::new(),
            out: OutQueue {
                bytes: vec![0u8; OUT_BYTES].into_boxed_slice(),
                used: 0,
                transmits: Vec::with_capacity(OUT_PACKETS),
            },
            events: VecDeque::new(),
            file_writes: Vec::new(),
            counters: EndpointCounters::default(),
        }
    }

    /// How many calls run.
    pub fn len(&self) -> usize {
        self.by_no.len()
    }

    /// Whether no call runs.
    pub fn is_empty(&self) -> bool {
        self.by_no.is_empty()
    }

    /// The counters.
    pub fn counters(&self) -> EndpointCounters {
        self.counters
    }

    fn set_role(&mut self, socket: SocketId, role: Option<Role>) {
        let i = socket.0 as usize;
        if self.roles.len() <= i {
            self.roles.resize(i + 1, None);
        }
        self.roles[i] = role;
    }

    /// Tells the endpoint about one of the worker's shared sockets.
    pub fn add_shared_socket(&mut self, socket: SocketId, kind: SharedSocket) {
        self.set_role(socket, Some(Role::Shared(kind)));
    }

    // ---- Commands ------------------------------------------------------------------------

    /// Adds a call; its timers start at `now` (`wall` is the same moment on the wall clock,
    /// for RTCP). A clip source starts playing unless the call rings.
    pub fn add_call(
        &mut self,
        spec: CallSpec,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), EndpointError> {
        self.now = Some(now);
        let taken =
            [&spec.audio, &spec.video]
                .into_iter()
                .find_map(|ports| match ports.rtp_source {
                    Some(RtpSource::Shared { socket, ssrc })
                        if self.by_source.contains_key(&(socket, ssrc)) =>
                    {
                        Some(EndpointError::ProducerSsrcTaken(ssrc))
                    }
                    _ => None,
                });
        let session = match taken {
            Some(e) => Err(e),
            None => CallSession::new(spec.setup, now, wall).map_err(EndpointError::Keying),
        };
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                // Files opened for the call's recordings are closed again.
                for r in [spec.audio.recording, spec.video.recording]
                    .into_iter()
                    .flatten()
                {
                    self.file_writes.push(r.finish());
                }
                return Err(e);
            }
        };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.calls.push(None);
            self.calls.len() - 1
        });
        let shared_media = matches!(
            self.roles.get(spec.media.0 as usize),
            Some(Some(Role::Shared(_)))
        );
        if !shared_media {
            self.set_role(spec.media, Some(Role::Media(slot)));
        }
        for (ports, kind) in [
            (&spec.audio, MediaKind::Audio),
            (&spec.video, MediaKind::Video),
        ] {
            match ports.rtp_source {
                Some(RtpSource::Own(socket)) => {
                    self.set_role(socket, Some(Role::Local(slot, kind)))
                }
                Some(RtpSource::Shared { socket, ssrc }) => {
                    self.by_source.insert((socket, ssrc), (slot, kind));
                }
                None => {}
            }
            // A sink's socket of its own (one the producer's port could not serve) takes
            // nothing in: it has no role, so what arrives there is unclaimed.
        }
        let io = |p: TrackPorts| TrackIo {
            rtp_source: p.rtp_source,
            own_clip: p.clip,
            played: None,
            sink: p.sink,
            recording: p.recording,
        };
        let mut entry = Entry {
            no: spec.no,
            session,
            media: spec.media,
            shared_media,
            own_sockets: spec.own_sockets,
            audio: io(spec.audio),
            video: io(spec.video),
            streams: Vec::with_capacity(MAX_PEER_STREAMS),
            addrs: Vec::new(),
            open: false,
            timer: None,
            bridge: None,
        };
        entry.session.handle_timeout(now);
        self.by_no.insert(spec.no, slot);
        self.calls[slot] = Some(entry);
        self.after(slot, now);
        self.schedule(slot, now);
        Ok(())
    }

    /// Ends a call: finishes its recordings, publishes `call.ended` with its final
    /// statistics, forgets its routes, and returns the statistics and the sockets that were
    /// the call's alone (for the driver to close).
    pub fn remove_call(
        &mut self,
        no: CallNo,
        reason: String,
    ) -> Result<(CallStats, Vec<SocketId>), EndpointError> {
        let slot = self.by_no.remove(&no).ok_or(EndpointError::NoSuchCall)?;
        let entry = self.calls[slot].take().expect("by_no points at a call");
        for &(from, ssrc) in &entry.streams {
            let key = StreamKey::new(from, ssrc);
            if self.by_peer.get(&key) == Some(&slot) {
                self.by_peer.remove(&key);
            }
            if self.by_ssrc.get(&ssrc) == Some(&slot) {
                self.by_ssrc.remove(&ssrc);
            }
        }
        for addr in &entry.addrs {
            if let Some(slots) = self.by_addr.get_mut(addr) {
                slots.retain(|&s| s != slot);
                if slots.is_empty() {
                    self.by_addr.remove(addr);
                }
            }
        }
        self.open.retain(|&s| s != slot);
        self.backlog.retain(|&s| s != slot);
        for io in [&entry.audio, &entry.video] {
            if let Some(RtpSource::Shared { socket, ssrc }) = io.rtp_source {
                self.by_source.remove(&(socket, ssrc));
            }
        }
        for &socket in &entry.own_sockets {
            self.set_role(socket, None);
        }
        let Entry {
            session,
            own_sockets,
            audio,
            video,
            bridge,
            ..
        } = entry;
        let bridge_stats = bridge.map(|mut b| {
            b.stop();
            b.stats()
        });
        for io in [audio, video] {
            if let Some(r) = io.recording {
                self.file_writes.push(r.finish());
            }
        }
        let stats = CallStats {
            bridge: bridge_stats,
            ..session.stats()
        };
        self.ended.add(&stats);
        self.events.push_back(Event::CallEnded {
            call_id: session.call_id().clone(),
            reason,
            stats: Box::new(stats.clone()),
        });
        self.free.push(slot);
        Ok((stats, own_sockets))
    }

    fn entry_mut(&mut self, no: CallNo) -> Result<(Slot, &mut Entry), EndpointError> {
        let slot = *self.by_no.get(&no).ok_or(EndpointError::NoSuchCall)?;
        Ok((
            slot,
            self.calls[slot].as_mut().expect("by_no points at a call"),
        ))
    }

    /// Counts a datagram sent for call `no` that the kernel refused (an unreachable
    /// destination, a full socket buffer). A call that ended since is ignored.
    pub fn on_send_failed(&mut self, no: CallNo) {
        if let Ok((_, e)) = self.entry_mut(no) {
            e.session.on_send_failed();
        }
    }

    /// A track's RTP parameters (its codec among them).
    pub fn track_params(&self, no: CallNo, kind: MediaKind) -> Result<TrackParams, EndpointError> {
        let slot = *self.by_no.get(&no).ok_or(EndpointError::NoSuchCall)?;
        let e = self.calls[slot].as_ref().expect("a call");
        e.session
            .track_params(kind)
            .ok_or(EndpointError::NoSuchTrack(kind))
    }

    /// The traffic of every call this endpoint ran (ended) or runs, so far.
    pub fn traffic(&self) -> super::TrafficTotals {
        let mut totals = self.ended;
        for e in self.calls.iter().flatten() {
            totals.add(&e.session.stats());
        }
        totals
    }

    /// A statistics snapshot of a call.
    pub fn stats(&self, no: CallNo) -> Result<CallStats, EndpointError> {
        let slot = *self.by_no.get(&no).ok_or(EndpointError::NoSuchCall)?;
        let e = self.calls[slot].as_ref().expect("a call");
        Ok(CallStats {
            bridge: e.bridge.as_ref().map(|b| b.stats()),
            ..e.session.stats()
        })
    }

    /// Attaches a bot bridge to the call's audio (replacing one attached before, which is
    /// stopped), or with `None` detaches it: the track's audio then comes from its own source
    /// again.
    pub fn attach_bridge(
        &mut self,
        no: CallNo,
        spec: Option<BridgeSpec>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        let Some(params) = e.session.track_params(MediaKind::Audio) else {
            return Err(EndpointError::NoSuchTrack(MediaKind::Audio));
        };
        let bridge = match spec {
            Some(spec) => Some(Box::new(
                CallBridge::new(spec, e.session.call_id(), &params, now)
                    .map_err(|err| EndpointError::Bridge(err.to_string()))?,
            )),
            None => None,
        };
        if let Some(mut old) = std::mem::replace(&mut e.bridge, bridge) {
            old.stop();
            if e.bridge.is_none() {
                e.resume_own_source(MediaKind::Audio, now);
            }
        }
        self.schedule(slot, now);
        Ok(())
    }

    /// Detaches the bridge whose stream is `stream_sid` (not one attached since).
    pub fn detach_bridge(
        &mut self,
        no: CallNo,
        stream_sid: &str,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (_, e) = self.entry_mut(no)?;
        if e.bridge
            .as_ref()
            .is_some_and(|b| b.stream_sid() == stream_sid)
        {
            self.attach_bridge(no, None, now)?;
        }
        Ok(())
    }

    /// What the call's bot sent.
    pub fn bridge_input(
        &mut self,
        no: CallNo,
        input: BridgeInput,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        let bridge = e
            .bridge
            .as_mut()
            .ok_or_else(|| EndpointError::Bridge("the call has no bridge".to_owned()))?;
        bridge.input(input);
        self.schedule(slot, now);
        Ok(())
    }

    /// Sends the bridge's packet of the bot's audio if one is due, through the audio track's
    /// send path, and the peer's next frame to the bot.
    fn bridge_due(&mut self, slot: Slot, now: Instant) {
        if !self.out.has_room() {
            return;
        }
        let e = self.calls[slot].as_mut().expect("a call");
        let Some(bridge) = e.bridge.as_mut() else {
            return;
        };
        let room = e.session.overhead();
        let start = self.out.used;
        let buf = &mut self.out.bytes[start..start + MAX_DATAGRAM];
        let Some(len) = bridge.due(now, &mut buf[..MAX_DATAGRAM - room]) else {
            return;
        };
        if let Some((n, dest)) = e.session.on_source(MediaKind::Audio, buf, len, now) {
            let (no, media) = (e.no, e.media);
            self.out.push(no, media, dest, |_| Some(n));
        }
    }

    /// Gates (mutes) or ungates our sending on a track.
    pub fn gate(
        &mut self,
        no: CallNo,
        kind: MediaKind,
        gated: bool,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        if !e.session.set_gated(kind, gated, now) {
            return Err(EndpointError::NoSuchTrack(kind));
        }
        self.after(slot, now);
        self.schedule(slot, now);
        Ok(())
    }

    /// Sends DTMF `events` on the call's audio track, each a tone of `duration_ms`.
    pub fn send_dtmf(
        &mut self,
        no: CallNo,
        events: Vec<u8>,
        duration_ms: u32,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        e.session.send_dtmf(events, duration_ms, now)?;
        self.after(slot, now);
        self.schedule(slot, now);
        Ok(())
    }

    /// Records what the peer's signaling said: muted or on hold (`muted`), video on or off.
    pub fn set_peer_state(
        &mut self,
        no: CallNo,
        muted: Option<bool>,
        video: Option<bool>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        if let Some(m) = muted {
            e.session.set_peer_muted(m);
        }
        if let Some(v) = video {
            e.session.set_peer_video(v);
        }
        self.schedule(slot, now);
        Ok(())
    }

    /// The call was answered: media may flow, with `candidates` added; the receive keys are
    /// replaced first if the answering device is another than assumed. Returns whether the
    /// call was ringing.
    pub fn answer(
        &mut self,
        no: CallNo,
        candidates: &[Candidate],
        rekey: Option<(SrtpProfile, MasterKey)>,
        now: Instant,
    ) -> Result<bool, EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        let was_ringing = e.session.ringing();
        if let Some((profile, rx)) = rekey {
            e.session
                .rekey_rx(profile, &rx)
                .map_err(EndpointError::Keying)?;
        }
        e.session.answer(candidates, now);
        self.after(slot, now);
        self.schedule(slot, now);
        Ok(was_ringing)
    }

    /// Plays `clip` over the track's own source (a producer's packets are ignored, and an own
    /// clip waits, until the clip ends; then the own source goes on).
    pub fn play(
        &mut self,
        no: CallNo,
        kind: MediaKind,
        clip: Arc<AudioClip>,
        looping: bool,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let (slot, e) = self.entry_mut(no)?;
        if !e.session.has_track(kind) {
            return Err(EndpointError::NoSuchTrack(kind));
        }
        if e.bot_speaks(kind) {
            return Err(EndpointError::Bridged);
        }
        e.io_mut(kind).played = Some(ClipSource::new(clip, looping));
        self.schedule(slot, now);
        Ok(())
    }

    /// Starts recording what the track receives into a new file of a format (finishing any
    /// earlier recording of it), or stops (`None`).
    pub fn record(
        &mut self,
        no: CallNo,
        kind: MediaKind,
        file: Option<(super::sink::FileId, RecordingFormat)>,
    ) -> Result<(), EndpointError> {
        let (_, e) = self.entry_mut(no)?;
        let Some(params) = e.session.track_params(kind) else {
            return Err(EndpointError::NoSuchTrack(kind));
        };
        let recording = file
            .map(|(f, format)| {
                Recording::new(
                    f,
                    format,
                    params.codec,
                    params.payload_type,
                    params.clock_rate,
                )
            })
            .transpose()
            .map_err(EndpointError::Recording)?;
        let io = e.io_mut(kind);
        let old = io.recording.take();
        io.recording = recording;
        if let Some(old) = old {
            self.file_writes.push(old.finish());
        }
        Ok(())
    }

    // ---- Datagrams -----------------------------------------------------------------------

    /// Where a datagram that came in on `socket` from `from` goes. Reads only the routing
    /// tables (not the call), so that it can run for a whole batch before any is handled.
    pub fn route(&self, socket: SocketId, from: SocketAddr, datagram: &[u8]) -> Route {
        let role = self.roles.get(socket.0 as usize).copied().flatten();
        Route(match role {
            Some(Role::Media(slot)) => RouteKind::Call(slot),
            Some(Role::Local(slot, kind)) => RouteKind::Source(slot, kind),
            Some(Role::Shared(SharedSocket::Media)) => match stream_ssrc(datagram) {
                Some(ssrc) => match self.by_peer.get(&StreamKey::new(from, ssrc)) {
                    Some(&slot) => RouteKind::Known(slot),
                    None => RouteKind::Claim,
                },
                None => RouteKind::Claim,
            },
            Some(Role::Shared(SharedSocket::Local)) => match stream_ssrc(datagram) {
                Some(ssrc) => match self.by_source.get(&(socket, ssrc)) {
                    Some(&(slot, kind)) => RouteKind::Source(slot, kind),
                    None => RouteKind::Unclaimed,
                },
                None => RouteKind::Unclaimed,
            },
            None => RouteKind::Unclaimed,
        })
    }

    /// Hints to the CPU the call state that handling a datagram routed `route` will read:
    /// with `outer`, the first of two steps, a few datagrams earlier. Changes nothing.
    pub fn prefetch(&self, route: Route, outer: bool) {
        let (slot, source) = match route.0 {
            RouteKind::Known(slot) | RouteKind::Call(slot) => (slot, None),
            RouteKind::Source(slot, kind) => (slot, Some(kind)),
            RouteKind::Claim | RouteKind::Unclaimed => return,
        };
        if outer {
            crate::prefetch::prefetch(&self.calls[slot]);
        }
        if let Some(e) = &self.calls[slot] {
            e.prefetch(source, outer);
        }
    }

    /// Handles a datagram that came in from `from`, filling `datagram`, routed by
    /// [`Self::route`] (with no command in between). Media is decrypted or protected in
    /// place; a protected packet's tag goes into `trailer`.
    pub fn handle(
        &mut self,
        now: Instant,
        route: Route,
        from: SocketAddr,
        datagram: &mut [u8],
        trailer: &mut [u8],
    ) -> Outcome {
        let outcome = match route.0 {
            RouteKind::Known(slot) => self.on_network(slot, from, datagram, now),
            RouteKind::Call(slot) => self.on_call_socket(slot, from, datagram, now),
            RouteKind::Claim => self.on_shared(from, datagram, now),
            RouteKind::Source(slot, kind) => {
                self.on_source(slot, kind, from, datagram, trailer, now)
            }
            RouteKind::Unclaimed => Outcome::Unclaimed,
        };
        if outcome == Outcome::Unclaimed {
            self.counters.unclaimed += 1;
        }
        outcome
    }

    /// A datagram on a call's own media socket: its stream is known, or the call may claim
    /// it, or it is unclaimed.
    fn on_call_socket(
        &mut self,
        slot: Slot,
        from: SocketAddr,
        datagram: &mut [u8],
        now: Instant,
    ) -> Outcome {
        let Some(e) = self.calls[slot].as_ref() else {
            return Outcome::Unclaimed;
        };
        match classify(datagram) {
            PacketKind::Stun if e.session.knows(from) => {
                if self.stun_allowed(datagram, now) {
                    self.on_network(slot, from, datagram, now)
                } else {
                    self.counters.limited += 1;
                    Outcome::Done
                }
            }
            PacketKind::Stun => self.on_stranger_stun(Some(slot), from, datagram, now),
            PacketKind::Rtp | PacketKind::Rtcp => {
                let Some(ssrc) = stream_ssrc(datagram) else {
                    return Outcome::Unclaimed;
                };
                if e.streams.contains(&(from, ssrc)) {
                    self.on_network(slot, from, datagram, now)
                } else if self.policy.check_remote(from).is_err() {
                    Outcome::Unclaimed
                } else if e.may_claim(from, ssrc) {
                    if !e.session.knows(from) && self.trials.take(from.ip(), 1, now) == 0 {
                        self.counters.limited += 1;
                        return Outcome::Done;
                    }
                    self.claim(slot, from, ssrc, datagram, now, true)
                        .unwrap_or(Outcome::Done)
                } else {
                    Outcome::Unclaimed
                }
            }
            _ => Outcome::Unclaimed,
        }
    }

    /// A datagram on a shared media port whose stream no call has seen: STUN goes to the
    /// calls that know the sender; a new stream to the one call that may claim it, or by
    /// trial to whichever of several it authenticates with.
    fn on_shared(&mut self, from: SocketAddr, datagram: &mut [u8], now: Instant) -> Outcome {
        match classify(datagram) {
            PacketKind::Stun => self.on_shared_stun(from, datagram, now),
            PacketKind::Rtp | PacketKind::Rtcp => {
                let Some(ssrc) = stream_ssrc(datagram) else {
                    return Outcome::Unclaimed;
                };
                if self.policy.check_remote(from).is_err() {
                    return Outcome::Unclaimed;
                }
                let basis = self.find_claimants(from, ssrc);
                if self.claimants.is_empty() {
                    return Outcome::Unclaimed;
                }
                if basis != ClaimBasis::Address {
                    // The sender is no call's remote or candidate: its trials are bounded.
                    let wanted = self.claimants.len() as u64;
                    let granted = self.trials.take(from.ip(), wanted, now) as usize;
                    if granted == 0 {
                        self.counters.limited += 1;
                        return Outcome::Done;
                    }
                    self.claimants.truncate(granted);
                }
                // Attributed: the one call that can be the stream's counts what it refuses.
                let attributed = self.claimants.len() == 1
                    && (basis != ClaimBasis::Open || self.open.len() == 1);
                if attributed {
                    return self
                        .claim(self.claimants[0], from, ssrc, datagram, now, true)
                        .unwrap_or(Outcome::Done);
                }
                (0..self.claimants.len())
                    .find_map(|i| {
                        let slot = self.claimants[i];
                        self.claim(slot, from, ssrc, datagram, now, false)
                    })
                    .unwrap_or(Outcome::Unclaimed)
            }
            _ => Outcome::Unclaimed,
        }
    }

    /// Lists in `self.claimants` the calls on shared ports that may claim stream (`from`,
    /// `ssrc`): the one whose SSRC it is, else those whose remote or a candidate `from` is,
    /// else up to [`MAX_TRIALS_PER_DATAGRAM`] of the open ones (no media yet, or timed out),
    /// each datagram starting where the last one stopped. Returns which it was.
    fn find_claimants(&mut self, from: SocketAddr, ssrc: Ssrc) -> ClaimBasis {
        self.claimants.clear();
        if let Some(&slot) = self.by_ssrc.get(&ssrc) {
            self.claimants.push(slot);
            let known = self.calls[slot]
                .as_ref()
                .is_some_and(|e| e.session.knows(from));
            return if known {
                ClaimBasis::Address
            } else {
                ClaimBasis::Ssrc
            };
        }
        if let Some(slots) = self.by_addr.get(&from) {
            let calls = &self.calls;
            self.claimants.extend(
                slots
                    .iter()
                    .copied()
                    .filter(|&s| calls[s].as_ref().is_some_and(|e| e.session.knows(from))),
            );
            if !self.claimants.is_empty() {
                return ClaimBasis::Address;
            }
        }
        let mut looked = 0;
        while looked < self.open.len() && self.claimants.len() < MAX_TRIALS_PER_DATAGRAM {
            let Some(slot) = self.next_open() else {
                break;
            };
            self.claimants.push(slot);
            looked += 1;
        }
        ClaimBasis::Open
    }

    /// The next call of `open` that is still open, in turn, each call starting where the
    /// last one stopped (entries that are not open any more are dropped on the way).
    fn next_open(&mut self) -> Option<Slot> {
        while !self.open.is_empty() {
            let i = self.open_cursor % self.open.len();
            match self.calls[self.open[i]].as_mut() {
                Some(e) if e.is_open() => {
                    self.open_cursor = i + 1;
                    return Some(self.open[i]);
                }
                Some(e) => {
                    e.open = false;
                    self.open.swap_remove(i);
                }
                None => {
                    self.open.swap_remove(i);
                }
            }
        }
        None
    }

    /// A Binding request from an address no call knows, to the call in `slot` if it waits
    /// for its peer (no remote, no candidates: the peer is whoever comes first): answered,
    /// so that a peer behind a NAT learns its address, within the sender's budget of trials
    /// and the reply budget. Anything else is unclaimed.
    fn on_stranger_stun(
        &mut self,
        slot: Option<Slot>,
        from: SocketAddr,
        datagram: &mut [u8],
        now: Instant,
    ) -> Outcome {
        let Some(slot) = slot else {
            return Outcome::Unclaimed;
        };
        let waiting = self.calls[slot]
            .as_ref()
            .is_some_and(|e| e.session.waiting());
        if !waiting || !super::stun::is_request(datagram) || self.policy.check_remote(from).is_err()
        {
            return Outcome::Unclaimed;
        }
        if self.trials.take(from.ip(), 1, now) == 0 || !self.stun_allowed(datagram, now) {
            self.counters.limited += 1;
            return Outcome::Done;
        }
        self.on_network(slot, from, datagram, now)
    }

    /// Of the next few open calls on shared ports (at most [`MAX_TRIALS_PER_DATAGRAM`]), the
    /// first that waits for its peer.
    fn next_waiting(&mut self) -> Option<Slot> {
        for _ in 0..self.open.len().min(MAX_TRIALS_PER_DATAGRAM) {
            let slot = self.next_open()?;
            if self.calls[slot]
                .as_ref()
                .is_some_and(|e| e.session.waiting())
            {
                return Some(slot);
            }
        }
        None
    }

    /// STUN on a shared port: a success response to every call checking the sender (each
    /// matches its own transaction), a request or indication to one call that knows it; a
    /// stranger's request to a call that waits for its peer (see [`Self::on_stranger_stun`]).
    fn on_shared_stun(&mut self, from: SocketAddr, datagram: &mut [u8], now: Instant) -> Outcome {
        let Some(slots) = self.by_addr.get(&from).cloned() else {
            let waiting = self.next_waiting();
            return self.on_stranger_stun(waiting, from, datagram, now);
        };
        if !self.stun_allowed(datagram, now) {
            self.counters.limited += 1;
            return Outcome::Done;
        }
        let response = super::stun::is_success_response(datagram);
        let mut taken = false;
        for slot in slots {
            let knows = self.calls[slot]
                .as_ref()
                .is_some_and(|e| e.session.knows(from));
            if knows {
                self.on_network(slot, from, datagram, now);
                taken = true;
                if !response {
                    break;
                }
            }
        }
        if taken {
            Outcome::Done
        } else {
            Outcome::Unclaimed
        }
    }

    /// Whether a STUN datagram may be handed to a call: a request only while the reply
    /// budget lasts (its answer is charged now).
    fn stun_allowed(&mut self, datagram: &[u8], now: Instant) -> bool {
        !super::stun::is_request(datagram)
            || self
                .stun_replies
                .take(super::stun::MAX_SUCCESS_LEN as u64, now)
    }

    /// Offers a stream not seen before to the call in `slot`. If it authenticates, the call
    /// learns the stream and the datagram is handled. If not: with `attributed` (the call is
    /// the only one that may claim it) the call counts it and `Some(Done)` is returned, else
    /// nothing changes and `None` is returned.
    fn claim(
        &mut self,
        slot: Slot,
        from: SocketAddr,
        ssrc: Ssrc,
        datagram: &mut [u8],
        now: Instant,
        attributed: bool,
    ) -> Option<Outcome> {
        let e = self.calls[slot].as_mut()?;
        let inbound = if attributed {
            e.session.on_network(datagram, from, now)
        } else {
            e.session.try_claim(datagram, from, now)?
        };
        if !matches!(inbound, Inbound::Dropped(_)) {
            self.learn(slot, from, ssrc);
        }
        Some(self.delivered(slot, datagram, inbound, now))
    }

    /// The call in `slot` authenticated stream (`from`, `ssrc`).
    fn learn(&mut self, slot: Slot, from: SocketAddr, ssrc: Ssrc) {
        let Some(e) = self.calls[slot].as_mut() else {
            return;
        };
        if e.streams.len() == MAX_PEER_STREAMS {
            let (old_from, old_ssrc) = e.streams.remove(0);
            if e.shared_media {
                let old = StreamKey::new(old_from, old_ssrc);
                if self.by_peer.get(&old) == Some(&slot) {
                    self.by_peer.remove(&old);
                }
                if !e.streams.iter().any(|s| s.1 == old_ssrc)
                    && self.by_ssrc.get(&old_ssrc) == Some(&slot)
                {
                    self.by_ssrc.remove(&old_ssrc);
                }
            }
        }
        e.streams.push((from, ssrc));
        if e.shared_media {
            self.by_peer.insert(StreamKey::new(from, ssrc), slot);
            self.by_ssrc.insert(ssrc, slot);
        }
    }

    /// A datagram of a stream the call has seen (or STUN it should take).
    fn on_network(
        &mut self,
        slot: Slot,
        from: SocketAddr,
        datagram: &mut [u8],
        now: Instant,
    ) -> Outcome {
        let Some(e) = self.calls[slot].as_mut() else {
            return Outcome::Unclaimed;
        };
        let inbound = e.session.on_network(datagram, from, now);
        self.delivered(slot, datagram, inbound, now)
    }

    /// After the call in `slot` took a datagram: its own output is queued, and media is
    /// recorded and handed on to the track's sink.
    fn delivered(
        &mut self,
        slot: Slot,
        datagram: &[u8],
        inbound: Inbound,
        now: Instant,
    ) -> Outcome {
        let e = self.calls[slot].as_mut().expect("a call");
        let has_output = e.session.has_output();
        let outcome = match inbound {
            Inbound::Media { kind, len } => {
                if let (MediaKind::Audio, Some(b)) = (kind, e.bridge.as_mut()) {
                    b.on_media(&datagram[..len], now);
                }
                let io = e.io_mut(kind);
                if let Some(r) = &mut io.recording {
                    r.record(&datagram[..len]);
                    if let Some(w) = r.take_pages() {
                        self.file_writes.push(w);
                    }
                }
                match io.sink {
                    Some((socket, dest)) => Outcome::Send(Transmit {
                        call: e.no,
                        socket,
                        dest,
                        start: 0,
                        len,
                        trailer: 0,
                    }),
                    None => Outcome::Done,
                }
            }
            Inbound::Consumed | Inbound::Dropped(_) => Outcome::Done,
        };
        if has_output {
            self.after(slot, now);
        }
        outcome
    }

    /// Plain RTP from a track's producer: rewritten and protected in place, tag in `trailer`.
    fn on_source(
        &mut self,
        slot: Slot,
        kind: MediaKind,
        from: SocketAddr,
        packet: &mut [u8],
        trailer: &mut [u8],
        now: Instant,
    ) -> Outcome {
        if !self.policy.allows_producer(from) {
            return Outcome::Unclaimed;
        }
        let Some(e) = self.calls[slot].as_mut() else {
            return Outcome::Unclaimed;
        };
        if classify(packet) != PacketKind::Rtp {
            return Outcome::Unclaimed;
        }
        let io = e.io(kind);
        if io.rtp_source.is_none() {
            return Outcome::Unclaimed;
        }
        // A clip, or the bot of a bridged audio track, speaks instead.
        if io.clip().is_some() || e.bot_speaks(kind) {
            return Outcome::Done;
        }
        let tag_len = e.session.overhead();
        let Some(tag) = trailer.get_mut(..tag_len) else {
            return Outcome::Done;
        };
        match e.session.on_source_detached(kind, packet, tag, now) {
            Some(dest) => Outcome::Send(Transmit {
                call: e.no,
                socket: e.media,
                dest,
                start: 0,
                len: packet.len(),
                trailer: tag_len,
            }),
            None => Outcome::Done,
        }
    }

    // ---- Timers and output ---------------------------------------------------------------

    /// When [`Self::handle_timeout`] should next run, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.backlog.is_empty() {
            return self.now;
        }
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Runs what is due at `now`: the calls' timers (checks, keepalives, RTCP, timeouts),
    /// clip packets and comfort silence. Stops early when the out queue is full; then
    /// [`Self::poll_timeout`] is due at once, after the driver drained the queue.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(&slot) = self.backlog.front() {
            if !self.out.has_room() {
                return;
            }
            self.backlog.pop_front();
            self.after(slot, now);
        }
        // Each call runs at most once per call of this method: a deadline that stays due is
        // left for the next one, so that no session can hold the worker here.
        let mut ran = 0;
        let limit = self.by_no.len();
        while let Some(&Reverse((t, slot, generation))) = self.timers.peek() {
            if t > now || !self.out.has_room() {
                break;
            }
            let live = self.calls[slot]
                .as_ref()
                .is_some_and(|e| e.timer.is_some_and(|(g, _)| g == generation));
            if !live {
                // Superseded, or its call ended: gone whatever the limit, or it would stay
                // due for ever (with no call left, the limit is 0).
                self.timers.pop();
                continue;
            }
            if ran >= limit {
                break;
            }
            self.timers.pop();
            ran += 1;
            self.calls[slot].as_mut().expect("a call").timer = None;
            self.calls[slot]
                .as_mut()
                .expect("a call")
                .session
                .handle_timeout(now);
            for kind in [MediaKind::Audio, MediaKind::Video] {
                self.play_due(slot, kind, now);
            }
            self.bridge_due(slot, now);
            self.after(slot, now);
            self.schedule(slot, now);
        }
    }

    /// Puts a call's deadline in the heap if it has none or it moved earlier (a command can
    /// only bring it forward: a later one is found when the earlier fires).
    fn schedule(&mut self, slot: Slot, now: Instant) {
        let e = self.calls[slot].as_mut().expect("a call");
        e.start_clips(now);
        let due = e.next_deadline();
        if e.timer.is_none_or(|(_, t)| due < t) {
            self.next_timer += 1;
            e.timer = Some((self.next_timer, due));
            self.timers.push(Reverse((due, slot, self.next_timer)));
        }
    }

    /// Sends the clip packets of a track that are due, through the track's send path.
    fn play_due(&mut self, slot: Slot, kind: MediaKind, now: Instant) {
        let e = self.calls[slot].as_mut().expect("a call");
        e.start_clips(now);
        if e.bot_speaks(kind) {
            // The bot speaks instead: a clip played before it came has no turn, and the own
            // source waits (and keeps no deadline) until the bot is detached.
            e.audio.played = None;
            return;
        }
        let Some(clock) = e.session.clock_rate(kind) else {
            return;
        };
        let room = e.session.overhead();
        while self.out.has_room() {
            let e = self.calls[slot].as_mut().expect("a call");
            let Some(clip) = e.io_mut(kind).clip_mut() else {
                return;
            };
            let start = self.out.used;
            let buf = &mut self.out.bytes[start..start + MAX_DATAGRAM];
            match clip.poll(now, clock, buf, room) {
                ClipPoll::Packet(len) => {
                    if let Some((n, dest)) = e.session.on_source(kind, buf, len, now) {
                        let (no, media) = (e.no, e.media);
                        self.out.push(no, media, dest, |_| Some(n));
                    }
                }
                ClipPoll::Idle => return,
                ClipPoll::Ended => {
                    self.events.push_back(Event::SourceEnded {
                        call_id: e.session.call_id().clone(),
                        media: kind,
                    });
                    let io = e.io_mut(kind);
                    if io.played.take().is_none() {
                        io.own_clip = None;
                        return;
                    }
                    // A played clip ended: the track's own source goes on, at once.
                    e.resume_own_source(kind, now);
                }
            }
        }
    }

    /// Queues what the call's session made (STUN, RTCP, keepalives, comfort silence) and
    /// publishes its events; a call whose packets do not all fit waits in the backlog.
    fn after(&mut self, slot: Slot, now: Instant) {
        let Some(e) = self.calls[slot].as_mut() else {
            return;
        };
        let call_id = e.session.call_id().clone();
        while let Some(event) = e.session.poll_event() {
            let event = match event {
                CallEvent::Connected { remote, how } => Event::Connected {
                    call_id: call_id.clone(),
                    remote,
                    via: how,
                },
                CallEvent::RemoteChanged { from, to, how } => Event::RemoteChanged {
                    call_id: call_id.clone(),
                    from,
                    remote: to,
                    via: how,
                },
                CallEvent::Dtmf { digit } => {
                    if let Some(b) = e.bridge.as_mut() {
                        b.on_dtmf(digit);
                    }
                    Event::Dtmf {
                        call_id: call_id.clone(),
                        digit,
                    }
                }
                CallEvent::KeyframeNeeded { kind } => Event::KeyframeNeeded {
                    call_id: call_id.clone(),
                    media: kind,
                },
                CallEvent::MediaTimeout { silent_s, held } => Event::MediaTimeout {
                    call_id: call_id.clone(),
                    silent_s,
                    peer_muted: held,
                },
            };
            self.events.push_back(event);
        }
        let (no, media) = (e.no, e.media);
        while self.out.has_room() {
            let Some(t) = e.session.poll_transmit() else {
                break;
            };
            self.out.push(no, media, t.dest, |buf| {
                let bytes = buf.get_mut(..t.data.len())?;
                bytes.copy_from_slice(&t.data);
                Some(t.data.len())
            });
        }
        while self.out.has_room() {
            let start = self.out.used;
            let buf = &mut self.out.bytes[start..start + MAX_DATAGRAM];
            let Some((n, dest)) = e.session.poll_comfort(buf, now) else {
                break;
            };
            self.out.push(no, media, dest, |_| Some(n));
        }
        if self.out.has_room() {
            let start = self.out.used;
            let buf = &mut self.out.bytes[start..start + MAX_DATAGRAM];
            if let Some((n, dest)) = e.session.poll_dtmf(buf, now) {
                self.out.push(no, media, dest, |_| Some(n));
            }
        }
        let pending = e.session.has_output();
        if e.shared_media {
            self.index_addresses(slot);
        }
        if pending && !self.backlog.contains(&slot) {
            self.backlog.push_back(slot);
        }
    }

    /// Lists a call on a shared port under its current addresses, and among the open calls
    /// if it has no remote or timed out.
    fn index_addresses(&mut self, slot: Slot) {
        let e = self.calls[slot].as_mut().expect("a call");
        for addr in e.session.addresses() {
            if !e.addrs.contains(&addr) {
                e.addrs.push(addr);
                self.by_addr.entry(addr).or_default().push(slot);
            }
        }
        if !e.open && e.is_open() {
            e.open = true;
            self.open.push(slot);
        }
    }

    /// The packets the endpoint made itself: `transmits` name ranges of `bytes`. Call
    /// [`Self::clear_outgoing`] once they were sent.
    pub fn outgoing(&self) -> (&[u8], &[Transmit]) {
        (&self.out.bytes[..self.out.used], &self.out.transmits)
    }

    /// Empties the out queue.
    pub fn clear_outgoing(&mut self) {
        self.out.used = 0;
        self.out.transmits.clear();
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next bytes for the file writer.
    pub fn poll_file_write(&mut self) -> Option<FileWrite> {
        self.file_writes.pop()
    }
}

impl Entry {
    /// Starts pending clips once media may flow.
    fn start_clips(&mut self, now: Instant) {
        if self.session.ringing() {
            return;
        }
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let started = match self.io_mut(kind).clip_mut() {
                Some(clip) if !clip.started() => {
                    clip.start(now);
                    true
                }
                _ => false,
            };
            if started {
                self.session.switch_source(kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::call::bridge::{BridgeMessage, BridgeOutlet};
    use crate::call::{CallTimers, MuteMode, TrackParams, TrackSetup};
    use crate::keying::CallKeys;
    use crate::media::bridge_frame::BridgeFormat;
    use crate::rtp::{RtpHeader, RtpPacket, SeqNo};
    use crate::srtp::{SrtpContext, SrtpOptions};

    const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;
    const MEDIA: SocketId = SocketId(1);
    const SHARED: SocketId = SocketId(100);
    const SHARED_LOCAL: SocketId = SocketId(101);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn key(seed: u8) -> MasterKey {
        MasterKey::from_concatenated(PROFILE, &[seed; 30]).unwrap()
    }

    /// The peer's side of call `i`: it sends with key 2i+1 and receives with key 2i.
    struct Peer {
        tx: SrtpContext,
        rx: SrtpContext,
        ssrc: Ssrc,
        seq: u16,
    }

    impl Peer {
        fn new(i: u8, ssrc: u32) -> Self {
            let ctx = |k| SrtpContext::new(PROFILE, &key(k), &SrtpOptions::default()).unwrap();
            Peer {
                tx: ctx(2 * i + 1),
                rx: ctx(2 * i),
                ssrc: Ssrc(ssrc),
                seq: 0,
            }
        }

        /// The next SRTP packet of its stream.
        fn packet(&mut self) -> Vec<u8> {
            self.seq += 1;
            let mut buf = vec![0u8; 128];
            let header = RtpHeader {
                payload_type: 111,
                seq: SeqNo(self.seq),
                timestamp: u32::from(self.seq) * 960,
                ssrc: self.ssrc,
                ..RtpHeader::default()
            };
            let n = header.emit(&mut buf, &[0xf8, 1, 2, 3]).unwrap();
            let n = self.tx.protect(&mut buf, n).unwrap();
            buf.truncate(n);
            buf
        }

        /// The RTP packets the endpoint has queued, decrypted (the queue is emptied).
        fn take_rtp(&mut self, ep: &mut Endpoint) -> Vec<Vec<u8>> {
            let (bytes, sent) = ep.outgoing();
            let rtp = sent
                .iter()
                .filter(|t| classify(&bytes[t.start..]) == PacketKind::Rtp)
                .map(|t| {
                    let mut wire = bytes[t.start..][..t.len].to_vec();
                    let n = self.rx.unprotect(&mut wire).unwrap();
                    wire.truncate(n);
                    wire
                })
                .collect();
            ep.clear_outgoing();
            rtp
        }
    }

    /// A clip of `n` 20 ms Opus packets, packet `i` being `[0xf8, i]`.
    fn numbered_clip(n: u8) -> Arc<AudioClip> {
        Arc::new(AudioClip {
            codec: crate::media::codec::CodecKind::Opus,
            channels: 1,
            packets: (0..n).map(|i| (vec![0xf8, i], 960)).collect(),
        })
    }

    /// Call 0, to a peer at port 5000, with `clip` as its audio source.
    fn add_playing(ep: &mut Endpoint, clip: ClipSource, now: Instant) {
        ep.add_call(
            CallSpec {
                no: CallNo(0),
                setup: setup(0, &[addr(5000)], MuteMode::Drop),
                media: MEDIA,
                own_sockets: vec![MEDIA],
                audio: TrackPorts {
                    clip: Some(clip),
                    ..TrackPorts::default()
                },
                video: TrackPorts::default(),
            },
            now,
            SystemTime::now(),
        )
        .unwrap();
        ep.clear_outgoing();
    }

    fn timers() -> CallTimers {
        CallTimers {
            check_timeout: Duration::from_secs(3),
            keepalive: Duration::from_secs(100),
            rtcp_interval: Duration::from_secs(100),
            media_timeout: Duration::from_secs(10),
            media_timeout_held: Duration::from_secs(30),
        }
    }

    fn setup(i: u8, candidates: &[SocketAddr], mute_mode: MuteMode) -> CallSetup {
        CallSetup {
            call_id: format!("call-{i}"),
            keys: CallKeys {
                profile: PROFILE,
                rtp_tag_len: None,
                tx: key(2 * i),
                rx: key(2 * i + 1),
            },
            srtp: SrtpOptions::default(),
            candidates: candidates
                .iter()
                .map(|&addr| Candidate { addr, priority: 1 })
                .collect(),
            audio: Some(TrackSetup {
                params: TrackParams {
                    payload_type: 111,
                    clock_rate: 48000,
                    ptime_ms: 20,
                    dtmf_payload_type: Some(101),
                    codec: Some(crate::media::codec::CodecKind::Opus),
                },
                ssrc: Ssrc(0x100 + u32::from(i)),
            }),
            video: None,
            timers: timers(),
            ringing: false,
            mute_mode,
        }
    }

    /// Adds call `i` on `media` (a call of its own unless it is `SHARED`) with a producer on
    /// its own port `local` and a sink.
    fn add(ep: &mut Endpoint, i: u8, media: SocketId, candidates: &[SocketAddr], now: Instant) {
        let local = SocketId(10 + u32::from(i));
        let mut own = vec![local];
        if media != SHARED {
            own.push(media);
        }
        ep.add_call(
            CallSpec {
                no: CallNo(u64::from(i)),
                setup: setup(i, candidates, MuteMode::Drop),
                media,
                own_sockets: own,
                audio: TrackPorts {
                    rtp_source: Some(RtpSource::Own(local)),
                    sink: Some((local, addr(6000 + u16::from(i)))),
                    ..TrackPorts::default()
                },
                video: TrackPorts::default(),
            },
            now,
            SystemTime::now(),
        )
        .unwrap();
    }

    fn deliver(
        ep: &mut Endpoint,
        socket: SocketId,
        from: SocketAddr,
        packet: &[u8],
        now: Instant,
    ) -> (Outcome, Vec<u8>) {
        let mut buf = packet.to_vec();
        let mut trailer = [0u8; 16];
        let route = ep.route(socket, from, &buf);
        let outcome = ep.handle(now, route, from, &mut buf, &mut trailer);
        if let Outcome::Send(t) = outcome {
            buf.truncate(t.len);
            buf.extend_from_slice(&trailer[..t.trailer]);
        }
        (outcome, buf)
    }

    /// Whether a datagram was delivered (decrypted and sent on to its sink).
    fn sent_on(outcome: Outcome) -> bool {
        matches!(outcome, Outcome::Send(_))
    }

    fn dropped(ep: &Endpoint, i: u8) -> (u64, u64, u64) {
        let d = ep
            .stats(CallNo(u64::from(i)))
            .unwrap()
            .audio
            .unwrap()
            .dropped;
        (d.auth, d.replay, d.other)
    }

    fn events(ep: &mut Endpoint) -> Vec<Event> {
        std::iter::from_fn(|| ep.poll_event()).collect()
    }

    #[test]
    fn telephone_events_become_one_event_per_digit_and_no_audio() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        add(&mut ep, 0, MEDIA, &[addr(5000)], t0);
        events(&mut ep);
        let mut peer = Peer::new(0, 0xd7);
        let mut dtmf = |seq: u16, ts: u32, payload: [u8; 4]| {
            let mut buf = vec![0u8; 64];
            let header = RtpHeader {
                payload_type: 101,
                seq: SeqNo(seq),
                timestamp: ts,
                ssrc: Ssrc(0xd7),
                ..RtpHeader::default()
            };
            let n = header.emit(&mut buf, &payload).unwrap();
            let n = peer.tx.protect(&mut buf, n).unwrap();
            buf.truncate(n);
            deliver(&mut ep, MEDIA, addr(5000), &buf, t0).0
        };
        // Digit 5: three growing packets, three end packets; then digit #, one packet.
        let mut outcomes = Vec::new();
        for (k, payload) in [
            [5, 10, 0, 160],
            [5, 10, 1, 64],
            [5, 10, 1, 224],
            [5, 0x8a, 3, 32],
            [5, 0x8a, 3, 32],
            [5, 0x8a, 3, 32],
            [11, 10, 0, 160],
        ]
        .into_iter()
        .enumerate()
        {
            let ts = if k < 6 { 8000 } else { 16000 };
            outcomes.push(dtmf(100 + k as u16, ts, payload));
        }
        assert!(
            outcomes.iter().all(|o| *o == Outcome::Done),
            "never sent to the sink: {outcomes:?}"
        );
        let digits: Vec<char> = events(&mut ep)
            .into_iter()
            .filter_map(|e| match e {
                Event::Dtmf { digit, .. } => Some(digit),
                _ => None,
            })
            .collect();
        assert_eq!(digits, ['5', '#']);
        let stats = ep.stats(CallNo(0)).unwrap().audio.unwrap();
        assert_eq!(stats.received.packets, 7, "counted as the stream's packets");
    }

    #[test]
    fn digits_go_out_as_telephone_events_in_place_of_the_audio() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        add(&mut ep, 0, MEDIA, &[addr(5000)], t0);
        let mut peer = Peer::new(0, 0xd7);
        // The peer's media makes it the remote.
        assert!(sent_on(
            deliver(&mut ep, MEDIA, addr(5000), &peer.packet(), t0).0
        ));
        ep.clear_outgoing();
        ep.send_dtmf(CallNo(0), vec![1, 11], 60, t0).unwrap();
        assert_eq!(
            ep.send_dtmf(CallNo(0), vec![2], 60, t0),
            Err(EndpointError::Dtmf(DtmfRefused::Busy))
        );
        let mut sent = Vec::new();
        let mut now = t0;
        for _ in 0..40 {
            // The producer keeps sending audio: held back while digits go out.
            let mut p = vec![0u8; 64];
            let n = RtpHeader {
                payload_type: 111,
                seq: SeqNo(sent.len() as u16),
                ssrc: Ssrc(77),
                ..RtpHeader::default()
            }
            .emit(&mut p, &[0xf8, 1, 2])
            .unwrap();
            p.truncate(n);
            let (audio, forwarded) = deliver(&mut ep, SocketId(10), addr(40_000), &p, now);
            ep.handle_timeout(now);
            let (bytes, out) = ep.outgoing();
            let mut wires: Vec<Vec<u8>> = out
                .iter()
                .map(|t| bytes[t.start..][..t.len].to_vec())
                .collect();
            if sent_on(audio) {
                wires.insert(0, forwarded);
            }
            for mut wire in wires {
                if let Ok(n) = peer.rx.unprotect(&mut wire) {
                    let rtp = RtpPacket::new_checked(&wire[..n]).unwrap();
                    let p = rtp.payload().to_vec();
                    sent.push((
                        rtp.payload_type(),
                        rtp.marker(),
                        rtp.seq().0,
                        rtp.timestamp(),
                        p,
                    ));
                }
            }
            ep.clear_outgoing();
            if sent.len() > 10 && sent_on(audio) {
                break;
            }
            now += Duration::from_millis(20);
        }
        let events: Vec<_> = sent.iter().filter(|p| p.0 == 101).collect();
        // 60 ms at 48 kHz in 20 ms packets: durations 960, 1920, 2880, the last three times.
        assert_eq!(events.len(), 10, "{sent:?}");
        let durations: Vec<u16> = events
            .iter()
            .map(|p| u16::from_be_bytes([p.4[2], p.4[3]]))
            .collect();
        assert_eq!(
            durations,
            [960, 1920, 2880, 2880, 2880, 960, 1920, 2880, 2880, 2880]
        );
        assert_eq!(events[0].4[0], 1);
        assert_eq!(events[5].4[0], 11);
        assert!(
            events[0].1 && !events[1].1 && events[5].1,
            "markers on each digit's first"
        );
        assert!(
            events[..5].iter().all(|p| p.3 == events[0].3),
            "one timestamp per digit"
        );
        assert!(
            events[5].3.wrapping_sub(events[0].3) >= 2880,
            "the second digit after the first"
        );
        assert!(
            events[4].4[1] & 0x80 != 0 && events[3].4[1] & 0x80 != 0 && events[2].4[1] & 0x80 != 0
        );
        assert!(
            events.windows(2).all(|w| w[1].2 == w[0].2.wrapping_add(1)),
            "gap-free sequence"
        );
        // No audio went out while the digits did; it comes back after them.
        let first_event = sent.iter().position(|p| p.0 == 101).unwrap();
        let last_event = sent.iter().rposition(|p| p.0 == 101).unwrap();
        assert!(sent[first_event..=last_event].iter().all(|p| p.0 == 101));
        assert!(
            sent[last_event + 1..].iter().any(|p| p.0 == 111),
            "audio again: {sent:?}"
        );
        assert!(
            sent[last_event + 1].3.wrapping_sub(events[9].3) >= 2880,
            "audio goes on after the tones"
        );
    }

    /// A bridge outlet that keeps what the call sent its bot.
    #[derive(Default)]
    struct Collect(std::sync::Mutex<Vec<BridgeMessage>>);

    impl BridgeOutlet for Collect {
        fn send(&self, m: BridgeMessage) {
            self.0.lock().unwrap().push(m);
        }
    }

    #[test]
    fn a_bridged_call_trades_audio_with_its_bot() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        add(&mut ep, 0, MEDIA, &[addr(5000)], t0);
        let mut peer = Peer::new(0, 0xd7);
        assert!(sent_on(
            deliver(&mut ep, MEDIA, addr(5000), &peer.packet(), t0).0
        ));
        ep.clear_outgoing();
        let outlet = Arc::new(Collect::default());
        let spec = BridgeSpec {
            format: BridgeFormat::L16 { rate: 16_000 },
            stream_sid: "S1".into(),
            parameters: serde_json::Map::new(),
            max_queue_ms: 1_000,
            silence_when_idle: false,
            outlet: outlet.clone(),
        };
        ep.attach_bridge(CallNo(0), Some(spec), t0).unwrap();
        // 100 ms of the bot's audio.
        ep.bridge_input(CallNo(0), BridgeInput::Pcm(vec![500; 1_600]), t0)
            .unwrap();
        let mut from_bot = 0;
        let mut now = t0;
        for _ in 0..15 {
            deliver(&mut ep, MEDIA, addr(5000), &peer.packet(), now);
            ep.handle_timeout(now);
            let (bytes, out) = ep.outgoing();
            for t in out {
                let mut wire = bytes[t.start..][..t.len].to_vec();
                if let Ok(n) = peer.rx.unprotect(&mut wire) {
                    let rtp = RtpPacket::new_checked(&wire[..n]).unwrap();
                    if rtp.payload_type() == 111 {
                        from_bot += 1;
                    }
                }
            }
            ep.clear_outgoing();
            now += Duration::from_millis(20);
        }
        assert_eq!(from_bot, 5, "100 ms of the bot's audio in 20 ms packets");
        let messages = outlet.0.lock().unwrap().clone();
        let frames = messages
            .iter()
            .filter(|m| matches!(m, BridgeMessage::Binary(b) if b.len() == 640))
            .count();
        assert!(frames >= 12, "{frames} frames to the bot");
        let stats = ep.stats(CallNo(0)).unwrap().bridge.unwrap();
        assert_eq!(stats.packets_from_bot, 5);
        // Detached: the stream stops, and the bot's input has nowhere to go.
        ep.attach_bridge(CallNo(0), None, now).unwrap();
        assert!(matches!(
            outlet.0.lock().unwrap().last(),
            Some(BridgeMessage::Stop(_))
        ));
        assert!(matches!(
            ep.bridge_input(CallNo(0), BridgeInput::Clear, now),
            Err(EndpointError::Bridge(_))
        ));
        assert!(ep.stats(CallNo(0)).unwrap().bridge.is_none());
    }

    #[test]
    fn refused_sends_count_against_the_call_they_were_for() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        add(&mut ep, 0, MEDIA, &[addr(5000)], t0);
        add(&mut ep, 1, SocketId(2), &[addr(5001)], t0);
        // The STUN checks each call made name their call.
        let calls: Vec<CallNo> = ep.outgoing().1.iter().map(|t| t.call).collect();
        assert!(
            calls.contains(&CallNo(0)) && calls.contains(&CallNo(1)),
            "{calls:?}"
        );
        // So do the peer's packets sent on to the sink.
        let mut peer = Peer::new(1, 0xaaaa);
        let (outcome, _) = deliver(&mut ep, SocketId(2), addr(5001), &peer.packet(), t0);
        assert!(matches!(
            outcome,
            Outcome::Send(Transmit {
                call: CallNo(1),
                ..
            })
        ));

        ep.on_send_failed(CallNo(1));
        ep.on_send_failed(CallNo(1));
        ep.on_send_failed(CallNo(7));
        assert_eq!(ep.stats(CallNo(0)).unwrap().send_errors, 0);
        assert_eq!(ep.stats(CallNo(1)).unwrap().send_errors, 2);
        let (stats, _) = ep.remove_call(CallNo(1), "done".into()).unwrap();
        assert_eq!(stats.send_errors, 2, "the final stats keep them");
        // A failure reported after its call ended changes nothing.
        ep.on_send_failed(CallNo(1));
        assert_eq!(ep.stats(CallNo(0)).unwrap().send_errors, 0);
    }

    #[test]
    fn a_call_socket_takes_its_peer_and_leaves_strangers_unclaimed() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        let peer_addr = addr(5000);
        add(&mut ep, 0, MEDIA, &[peer_addr], t0);
        let mut peer = Peer::new(0, 0xaaaa);

        // The peer's stream is claimed, decrypted in place and sent to the sink.
        let (outcome, plain) = deliver(&mut ep, MEDIA, peer_addr, &peer.packet(), t0);
        let Outcome::Send(t) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!((t.socket, t.dest, t.trailer), (SocketId(10), addr(6000), 0));
        assert_eq!(
            RtpPacket::new_checked(&plain[..]).unwrap().payload(),
            &[0xf8, 1, 2, 3]
        );
        assert!(matches!(
            events(&mut ep)[..],
            [Event::Connected { via: "media", .. }]
        ));

        // A stranger's stream (unknown address and SSRC) is not even tried.
        let mut stranger = Peer::new(0, 0xbbbb);
        let (outcome, _) = deliver(&mut ep, MEDIA, addr(7000), &stranger.packet(), t0);
        assert_eq!(outcome, Outcome::Unclaimed);
        assert_eq!(ep.counters().unclaimed, 1);
        assert_eq!(dropped(&ep, 0), (0, 0, 0));

        // A forged packet of the peer's stream counts as the call's auth failure.
        let mut forged = peer.packet();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(
            deliver(&mut ep, MEDIA, peer_addr, &forged, t0).0,
            Outcome::Done
        );
        assert_eq!(dropped(&ep, 0), (1, 0, 0));

        // A replay counts as such.
        let p = peer.packet();
        assert!(matches!(
            deliver(&mut ep, MEDIA, peer_addr, &p, t0).0,
            Outcome::Send(_)
        ));
        assert_eq!(deliver(&mut ep, MEDIA, peer_addr, &p, t0).0, Outcome::Done);
        assert_eq!(dropped(&ep, 0), (1, 1, 0));

        // The peer's stream from a new address (NAT rebinding) authenticates and moves the
        // remote; a forged one from there would not have.
        let mut forged = peer.packet();
        forged[20] ^= 1;
        assert_eq!(
            deliver(&mut ep, MEDIA, addr(5001), &forged, t0).0,
            Outcome::Done
        );
        assert_eq!(ep.stats(CallNo(0)).unwrap().remote, Some(peer_addr));
        assert!(matches!(
            deliver(&mut ep, MEDIA, addr(5001), &peer.packet(), t0).0,
            Outcome::Send(_)
        ));
        assert_eq!(ep.stats(CallNo(0)).unwrap().remote, Some(addr(5001)));
        assert!(matches!(
            events(&mut ep)[..],
            [Event::RemoteChanged { remote, via: "media", .. }] if remote == addr(5001)
        ));
        assert_eq!(ep.counters().unclaimed, 1);
    }

    #[test]
    fn a_shared_port_tells_calls_apart_by_address_and_ssrc() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        ep.add_shared_socket(SHARED, SharedSocket::Media);
        // Three calls behind one relay address, a fourth elsewhere.
        let relay = addr(3478);
        for i in 0..3 {
            add(&mut ep, i, SHARED, &[relay], t0);
        }
        add(&mut ep, 3, SHARED, &[addr(4000)], t0);
        let mut peers: Vec<Peer> = (0..4).map(|i| Peer::new(i, 0xa0 + u32::from(i))).collect();

        // Each relayed stream is claimed by trial by the call whose keys it has.
        for round in 0..3 {
            for i in 0..3u8 {
                let (outcome, _) =
                    deliver(&mut ep, SHARED, relay, &peers[usize::from(i)].packet(), t0);
                let Outcome::Send(t) = outcome else {
                    panic!("round {round} call {i}: {outcome:?}")
                };
                assert_eq!(t.dest, addr(6000 + u16::from(i)), "call {i}");
            }
        }
        // The fourth call's stream from the relay is not its (another address): unclaimed,
        // and nobody counts an auth failure for it.
        let (outcome, _) = deliver(&mut ep, SHARED, relay, &peers[3].packet(), t0);
        assert_eq!(outcome, Outcome::Unclaimed);
        for i in 0..4 {
            assert_eq!(dropped(&ep, i), (0, 0, 0));
        }
        // From its own address it is claimed at once.
        assert!(matches!(
            deliver(&mut ep, SHARED, addr(4000), &peers[3].packet(), t0).0,
            Outcome::Send(_)
        ));

        // A forged packet of a known stream counts at its call only.
        let mut forged = peers[1].packet();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(
            deliver(&mut ep, SHARED, relay, &forged, t0).0,
            Outcome::Done
        );
        assert_eq!(dropped(&ep, 1), (1, 0, 0));
        assert_eq!(dropped(&ep, 0), (0, 0, 0));

        // Garbage and DTLS are unclaimed.
        assert_eq!(
            deliver(&mut ep, SHARED, relay, &[22, 0xfe, 0xfd, 0], t0).0,
            Outcome::Unclaimed
        );
        assert_eq!(
            deliver(&mut ep, SHARED, relay, &[0x80], t0).0,
            Outcome::Unclaimed
        );
        assert_eq!(ep.counters().unclaimed, 3);

        // An ended call's streams are unclaimed; the others go on.
        let (stats, sockets) = ep.remove_call(CallNo(1), "hangup".into()).unwrap();
        assert_eq!(stats.audio.unwrap().received.packets, 3);
        assert_eq!(sockets, vec![SocketId(11)]);
        assert_eq!(
            deliver(&mut ep, SHARED, relay, &peers[1].packet(), t0).0,
            Outcome::Unclaimed
        );
        assert!(matches!(
            deliver(&mut ep, SHARED, relay, &peers[2].packet(), t0).0,
            Outcome::Send(_)
        ));
        assert!(
            events(&mut ep)
                .iter()
                .any(|e| matches!(e, Event::CallEnded { reason, .. } if reason == "hangup"))
        );
    }

    #[test]
    fn producers_are_found_by_port_or_by_ssrc_and_protected_with_a_detached_tag() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        ep.add_shared_socket(SHARED_LOCAL, SharedSocket::Local);
        let peer_addr = addr(5000);
        add(&mut ep, 0, MEDIA, &[peer_addr], t0);
        ep.add_call(
            CallSpec {
                no: CallNo(1),
                setup: setup(1, &[addr(5001)], MuteMode::Drop),
                media: SocketId(2),
                own_sockets: vec![SocketId(2)],
                audio: TrackPorts {
                    rtp_source: Some(RtpSource::Shared {
                        socket: SHARED_LOCAL,
                        ssrc: Ssrc(77),
                    }),
                    ..TrackPorts::default()
                },
                video: TrackPorts::default(),
            },
            t0,
            SystemTime::now(),
        )
        .unwrap();
        let producer = addr(9999);
        let plain = |ssrc: u32, seq: u16| {
            let mut buf = [0u8; 64];
            let header = RtpHeader {
                payload_type: 96,
                seq: SeqNo(seq),
                ssrc: Ssrc(ssrc),
                ..RtpHeader::default()
            };
            let n = header.emit(&mut buf, &[9; 20]).unwrap();
            buf[..n].to_vec()
        };
        let mut peers = [Peer::new(0, 1), Peer::new(1, 1)];
        for (socket, ssrc, call, media, dest) in [
            (SocketId(10), 1234, 0usize, MEDIA, peer_addr),
            (SHARED_LOCAL, 77, 1, SocketId(2), addr(5001)),
        ] {
            let (outcome, wire) = deliver(&mut ep, socket, producer, &plain(ssrc, 5), t0);
            let Outcome::Send(t) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!((t.socket, t.dest, t.trailer), (media, dest, 10));
            let mut wire = wire;
            let n = peers[call].rx.unprotect(&mut wire).unwrap();
            let p = RtpPacket::new_checked(&wire[..n]).unwrap();
            assert_eq!(
                (p.ssrc(), p.payload_type(), p.payload()),
                (Ssrc(0x100 + call as u32), 111, &[9; 20][..])
            );
        }
        // Another SSRC on the shared producer port, or RTCP on a producer port: unclaimed.
        assert_eq!(
            deliver(&mut ep, SHARED_LOCAL, producer, &plain(78, 1), t0).0,
            Outcome::Unclaimed
        );
        assert_eq!(
            deliver(
                &mut ep,
                SocketId(10),
                producer,
                &[0x81, 200, 0, 1, 0, 0, 0, 1],
                t0
            )
            .0,
            Outcome::Unclaimed
        );
        // The SSRC cannot be taken twice.
        let mut spec = CallSpec {
            no: CallNo(2),
            setup: setup(2, &[], MuteMode::Drop),
            media: SocketId(3),
            own_sockets: vec![SocketId(3)],
            audio: TrackPorts {
                rtp_source: Some(RtpSource::Shared {
                    socket: SHARED_LOCAL,
                    ssrc: Ssrc(77),
                }),
                ..TrackPorts::default()
            },
            video: TrackPorts::default(),
        };
        assert_eq!(
            ep.add_call(spec, t0, SystemTime::now()).unwrap_err(),
            EndpointError::ProducerSsrcTaken(Ssrc(77))
        );
        spec = CallSpec {
            no: CallNo(2),
            setup: setup(2, &[], MuteMode::Drop),
            media: SocketId(3),
            own_sockets: vec![],
            audio: TrackPorts::default(),
            video: TrackPorts::default(),
        };
        ep.add_call(spec, t0, SystemTime::now()).unwrap();
        assert_eq!(ep.len(), 3);
    }

    #[test]
    fn stun_is_answered_for_candidates_only() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        let candidate = addr(5000);
        add(&mut ep, 0, MEDIA, &[candidate], t0);
        // The call checks its candidate at once.
        let (bytes, sent) = ep.outgoing();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].socket, sent[0].dest), (MEDIA, candidate));
        assert!(matches!(
            crate::call::stun::parse(&bytes[sent[0].start..][..sent[0].len]),
            Some(crate::call::stun::Binding::Request(_))
        ));
        ep.clear_outgoing();

        let request = crate::call::stun::request([7; 12]);
        assert_eq!(
            deliver(&mut ep, MEDIA, candidate, &request, t0).0,
            Outcome::Done
        );
        let (bytes, sent) = ep.outgoing();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            crate::call::stun::parse(&bytes[sent[0].start..][..sent[0].len]),
            Some(crate::call::stun::Binding::Success(
                [7; 12],
                Some(candidate)
            ))
        );
        ep.clear_outgoing();
        // A stranger gets no answer: a reflector for nobody.
        assert_eq!(
            deliver(&mut ep, MEDIA, addr(6666), &request, t0).0,
            Outcome::Unclaimed
        );
        assert!(ep.outgoing().1.is_empty());
    }

    #[test]
    fn a_call_waiting_for_its_peer_answers_stun_within_the_senders_budget() {
        let t0 = Instant::now();
        let limits = EndpointLimits {
            trials_per_source_per_s: 3,
            ..EndpointLimits::default()
        };
        for shared in [false, true] {
            let mut ep = Endpoint::new(Arc::default(), limits);
            ep.add_shared_socket(SHARED, SharedSocket::Media);
            let socket = if shared { SHARED } else { MEDIA };
            // No remote and no candidates: its peer is whoever comes first.
            add(&mut ep, 0, socket, &[], t0);
            ep.clear_outgoing();
            let request = crate::call::stun::request([9; 12]);
            let stranger = addr(6666);
            let mut answered = 0;
            for _ in 0..10 {
                deliver(&mut ep, socket, stranger, &request, t0);
                let (bytes, sent) = ep.outgoing();
                for t in sent {
                    assert_eq!((t.socket, t.dest, t.call), (socket, stranger, CallNo(0)));
                    assert_eq!(
                        crate::call::stun::parse(&bytes[t.start..][..t.len]),
                        Some(crate::call::stun::Binding::Success([9; 12], Some(stranger)))
                    );
                    answered += 1;
                }
                ep.clear_outgoing();
            }
            // The source's budget: 3 a second, a burst of twice that.
            assert_eq!(answered, 6, "shared: {shared}");
            assert_eq!(ep.counters().limited, 4, "shared: {shared}");
            // Answering is all it does: the call still waits for its peer.
            assert_eq!(
                ep.stats(CallNo(0)).unwrap().state,
                crate::call::CallState::Waiting
            );
            // A call that knows its peer answers nobody else.
            add(
                &mut ep,
                1,
                if shared { SHARED } else { SocketId(2) },
                &[addr(5001)],
                t0,
            );
            ep.remove_call(CallNo(0), "done".into()).unwrap();
            ep.clear_outgoing();
            let other = addr(6667);
            let socket = if shared { SHARED } else { SocketId(2) };
            assert_eq!(
                deliver(&mut ep, socket, other, &request, t0).0,
                Outcome::Unclaimed
            );
            assert!(ep.outgoing().1.is_empty());
        }
    }

    #[test]
    fn new_streams_from_strangers_cost_a_bounded_number_of_trials() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        ep.add_shared_socket(SHARED, SharedSocket::Media);
        // 80 calls wait for a first packet from anyone; call 85 is live with peer 5000.
        for i in 0..80 {
            add(&mut ep, i, SHARED, &[], t0);
        }
        let live = 85u8;
        add(&mut ep, live, SHARED, &[addr(5000)], t0);
        let mut peer = Peer::new(live, 0xfeed);
        assert!(sent_on(
            deliver(&mut ep, SHARED, addr(5000), &peer.packet(), t0).0
        ));
        ep.clear_outgoing();

        let elsewhere = |host: u8| SocketAddr::from(([192, 0, 2, host], 7777));
        let stranger = elsewhere(7);
        let forged = |n: u32| {
            let mut p = Peer::new(121, 0x1_0000 + n).packet();
            p[20] ^= 1;
            p
        };
        let mut outcomes = (0, 0);
        for n in 0..10_000 {
            match deliver(&mut ep, SHARED, stranger, &forged(n), t0).0 {
                Outcome::Unclaimed => outcomes.0 += 1,
                Outcome::Done => outcomes.1 += 1,
                other => panic!("{other:?}"),
            }
            if n % 100 == 0 {
                // The live stream is untouched by the flood around it.
                assert!(sent_on(
                    deliver(&mut ep, SHARED, addr(5000), &peer.packet(), t0).0
                ));
            }
        }
        // The default budget: 100 trials a second, 200 at once; 4 calls tried per datagram.
        assert_eq!(outcomes, (50, 9_950), "tried, and dropped for the budget");
        assert_eq!(ep.counters().limited, 9_950);
        let later = t0 + Duration::from_secs(1);
        let tried = (0..1000)
            .filter(|&n| {
                deliver(&mut ep, SHARED, stranger, &forged(n), later).0 == Outcome::Unclaimed
            })
            .count();
        assert_eq!(tried, 25, "a second later: 100 more trials");
        // Another source has a budget of its own.
        assert_eq!(
            deliver(&mut ep, SHARED, elsewhere(8), &forged(1), later).0,
            Outcome::Unclaimed
        );
        // A waiting call still finds its peer, wherever it sends from.
        let mut first = Peer::new(3, 0xabc);
        let found = (0..100).any(|k| {
            let at = later + Duration::from_millis(100 * k);
            sent_on(deliver(&mut ep, SHARED, elsewhere(9), &first.packet(), at).0)
        });
        assert!(
            found,
            "the waiting call claimed its stream within its source's budget"
        );
    }

    #[test]
    fn producers_and_remotes_outside_the_policy_are_refused() {
        let t0 = Instant::now();
        let policy = Arc::new(RemotePolicy {
            producers: vec!["127.0.0.2/32".parse().unwrap()],
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            ..RemotePolicy::default()
        });
        let mut ep = Endpoint::new(policy.clone(), EndpointLimits::default());
        add(&mut ep, 0, MEDIA, &[addr(5000)], t0);
        ep.clear_outgoing();
        let mut plain = vec![0u8; 64];
        let n = RtpHeader {
            payload_type: 111,
            ssrc: Ssrc(5),
            ..RtpHeader::default()
        }
        .emit(&mut plain, &[1, 2, 3])
        .unwrap();
        plain.truncate(n);
        let local = SocketId(10);
        assert_eq!(
            deliver(&mut ep, local, addr(4000), &plain, t0).0,
            Outcome::Unclaimed
        );
        let producer = SocketAddr::from(([127, 0, 0, 2], 4000));
        assert!(matches!(
            deliver(&mut ep, local, producer, &plain, t0).0,
            Outcome::Send(_)
        ));
        // One of srtpd's own ports is no producer, even on an allowed address.
        policy.own.claim(4000);
        assert_eq!(
            deliver(&mut ep, local, producer, &plain, t0).0,
            Outcome::Unclaimed
        );
        // A waiting call latches onto no denied address, whatever it sends.
        let mut peer = Peer::new(0, 0x77);
        let denied = SocketAddr::from(([10, 1, 2, 3], 5000));
        assert_eq!(
            deliver(&mut ep, MEDIA, denied, &peer.packet(), t0).0,
            Outcome::Unclaimed
        );
        assert!(sent_on(
            deliver(&mut ep, MEDIA, addr(5000), &peer.packet(), t0).0
        ));
    }

    #[test]
    fn the_deadlines_of_ended_calls_go_with_them() {
        let t0 = Instant::now();
        for remaining in [0u8, 1] {
            let mut ep = Endpoint::default();
            for i in 0..=remaining {
                add(&mut ep, i, SocketId(20 + u32::from(i)), &[addr(5000)], t0);
            }
            let due = ep.poll_timeout().expect("a running call has a deadline");
            ep.remove_call(CallNo(0), "done".into()).unwrap();
            // Once past the ended call's deadline, nothing is due now: a driver waiting
            // for the next deadline sleeps (it spun while an ended call's stayed due).
            let later = due + Duration::from_secs(1);
            ep.handle_timeout(later);
            ep.clear_outgoing();
            if remaining == 0 {
                assert_eq!(ep.poll_timeout(), None);
            } else {
                ep.handle_timeout(later);
                ep.clear_outgoing();
                assert!(ep.poll_timeout().is_some_and(|t| t > later));
            }
        }
    }

    #[test]
    fn stun_replies_stay_within_their_byte_budget() {
        let t0 = Instant::now();
        let limits = EndpointLimits {
            stun_reply_bytes_per_s: 520,
            ..EndpointLimits::default()
        };
        let mut ep = Endpoint::new(Arc::default(), limits);
        let candidate = addr(5000);
        add(&mut ep, 0, MEDIA, &[candidate], t0);
        ep.clear_outgoing();
        let request = crate::call::stun::request([7; 12]);
        for _ in 0..100 {
            deliver(&mut ep, MEDIA, candidate, &request, t0);
        }
        assert_eq!(ep.outgoing().1.len(), 10, "520 bytes: ten replies");
        assert_eq!(ep.counters().limited, 90);
        ep.clear_outgoing();
        for _ in 0..100 {
            deliver(
                &mut ep,
                MEDIA,
                candidate,
                &request,
                t0 + Duration::from_millis(500),
            );
        }
        assert_eq!(ep.outgoing().1.len(), 5, "half a second later: five more");
    }

    #[test]
    fn timers_pace_comfort_silence_and_raise_the_media_timeout() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        let peer_addr = addr(5000);
        ep.add_call(
            CallSpec {
                no: CallNo(0),
                setup: setup(0, &[peer_addr], MuteMode::Silence),
                media: MEDIA,
                own_sockets: vec![MEDIA],
                audio: TrackPorts::default(),
                video: TrackPorts::default(),
            },
            t0,
            SystemTime::now(),
        )
        .unwrap();
        ep.clear_outgoing();
        ep.gate(CallNo(0), MediaKind::Audio, true, t0).unwrap();
        assert_eq!(
            ep.gate(CallNo(0), MediaKind::Video, true, t0),
            Err(EndpointError::NoSuchTrack(MediaKind::Video))
        );
        // Every 20 ms, one silence packet; the timer says when.
        let mut peer = Peer::new(0, 1);
        let mut now = t0;
        for k in 0..5 {
            ep.handle_timeout(now);
            let (bytes, sent) = ep.outgoing();
            assert_eq!(sent.len(), 1, "tick {k}");
            let mut wire = bytes[sent[0].start..][..sent[0].len].to_vec();
            let n = peer.rx.unprotect(&mut wire).unwrap();
            assert_eq!(
                RtpPacket::new_checked(&wire[..n]).unwrap().payload(),
                crate::call::OPUS_SILENCE
            );
            ep.clear_outgoing();
            let next = ep.poll_timeout().unwrap();
            assert_eq!(next, t0 + Duration::from_millis(20 * (k + 1)));
            now = next;
        }
        // No media for 10 s: one timeout event, at the tick that reaches it.
        ep.gate(CallNo(0), MediaKind::Audio, false, now).unwrap();
        let mut timeouts = 0;
        let end = t0 + Duration::from_secs(12);
        while let Some(next) = ep.poll_timeout().filter(|&t| t <= end) {
            ep.handle_timeout(next);
            ep.clear_outgoing();
            timeouts += events(&mut ep)
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::MediaTimeout {
                            silent_s: 10,
                            peer_muted: false,
                            ..
                        }
                    )
                })
                .count();
        }
        assert_eq!(timeouts, 1);
    }

    #[test]
    fn a_clip_plays_on_its_own_clock_and_ends_with_an_event() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        add_playing(&mut ep, ClipSource::new(numbered_clip(5), false), t0);
        let mut peer = Peer::new(0, 1);
        let mut got = Vec::new();
        // Late, irregular wakeups: every packet is sent once, none early.
        for ms in [0u64, 5, 45, 46, 100, 130] {
            ep.handle_timeout(t0 + Duration::from_millis(ms));
            for wire in peer.take_rtp(&mut ep) {
                let p = RtpPacket::new_checked(&wire[..]).unwrap();
                got.push((ms, p.payload()[1], p.seq().0));
            }
        }
        let payloads: Vec<(u64, u8)> = got.iter().map(|g| (g.0, g.1)).collect();
        assert_eq!(payloads, vec![(0, 0), (45, 1), (45, 2), (100, 3), (100, 4)]);
        assert!(
            got.windows(2).all(|w| w[1].2 == w[0].2.wrapping_add(1)),
            "gap-free: {got:?}"
        );
        assert!(events(&mut ep).iter().any(|e| matches!(
            e,
            Event::SourceEnded {
                media: MediaKind::Audio,
                ..
            }
        )));
    }

    #[test]
    fn the_own_source_goes_on_after_a_played_clip_and_after_a_bot() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        let clip = numbered_clip(3);
        let silence = ClipSource::silence(crate::media::codec::CodecKind::Opus);
        add_playing(&mut ep, silence, t0);
        let mut peer = Peer::new(0, 1);
        // (ms, payload, seq, timestamp) of every RTP packet sent, at 10 ms wakeups.
        let mut got: Vec<(u64, Vec<u8>, u16, u32)> = Vec::new();
        let mut run = |ep: &mut Endpoint, got: &mut Vec<_>, from: u64, to: u64| {
            for ms in (from..to).step_by(10) {
                ep.handle_timeout(t0 + Duration::from_millis(ms));
                for wire in peer.take_rtp(ep) {
                    let p = RtpPacket::new_checked(&wire[..]).unwrap();
                    got.push((ms, p.payload().to_vec(), p.seq().0, p.timestamp()));
                }
            }
        };
        let silence = crate::call::OPUS_SILENCE.to_vec();
        run(&mut ep, &mut got, 0, 100);
        ep.play(
            CallNo(0),
            MediaKind::Audio,
            clip,
            false,
            t0 + Duration::from_millis(100),
        )
        .unwrap();
        run(&mut ep, &mut got, 100, 300);
        let payloads: Vec<(u64, Vec<u8>)> = got.iter().map(|g| (g.0, g.1.clone())).collect();
        let mut expected: Vec<(u64, Vec<u8>)> = (0..5).map(|i| (i * 20, silence.clone())).collect();
        expected.extend((0..3u8).map(|i| (100 + u64::from(i) * 20, vec![0xf8, i])));
        // The clip's end is seen at its last packet's end (160 ms): silence goes on from there.
        expected.extend((0..7).map(|i| (160 + i * 20, silence.clone())));
        assert_eq!(payloads, expected);
        let events = events(&mut ep);
        let ended = events
            .iter()
            .filter(|e| matches!(e, Event::SourceEnded { .. }))
            .count();
        assert_eq!(
            ended, 1,
            "the played clip ended, not the silence: {events:?}"
        );

        // A bot speaks over it, and is detached: silence goes on again.
        let spec = BridgeSpec {
            format: BridgeFormat::L16 { rate: 16_000 },
            stream_sid: "S1".into(),
            parameters: serde_json::Map::new(),
            max_queue_ms: 1_000,
            silence_when_idle: false,
            outlet: Arc::new(Collect::default()),
        };
        ep.attach_bridge(CallNo(0), Some(spec), t0 + Duration::from_millis(300))
            .unwrap();
        let again = Arc::new(AudioClip::silence(crate::media::codec::CodecKind::Opus));
        assert_eq!(
            ep.play(
                CallNo(0),
                MediaKind::Audio,
                again,
                false,
                t0 + Duration::from_millis(300)
            ),
            Err(EndpointError::Bridged),
            "no clip over a bot"
        );
        let before = got.len();
        run(&mut ep, &mut got, 300, 400);
        assert_eq!(got.len(), before, "a quiet bot, and no silence over it");
        ep.attach_bridge(CallNo(0), None, t0 + Duration::from_millis(400))
            .unwrap();
        let before = got.len();
        run(&mut ep, &mut got, 400, 500);
        let after: Vec<u64> = got[before..]
            .iter()
            .filter(|g| g.1 == silence)
            .map(|g| g.0)
            .collect();
        assert_eq!(after, vec![400, 420, 440, 460, 480]);

        // One stream throughout: sequence numbers without a gap, timestamps that go on by a
        // packet time or more.
        assert!(
            got.windows(2).all(|w| w[1].2 == w[0].2.wrapping_add(1)),
            "{got:?}"
        );
        assert!(
            got.windows(2).all(|w| {
                let step = w[1].3.wrapping_sub(w[0].3);
                (960..48_000).contains(&step)
            }),
            "{got:?}"
        );
    }

    #[test]
    fn a_waiting_call_latches_onto_the_first_stream_that_authenticates() {
        let t0 = Instant::now();
        let mut ep = Endpoint::default();
        ep.add_shared_socket(SHARED, SharedSocket::Media);
        add(&mut ep, 0, SHARED, &[], t0);
        add(&mut ep, 1, SHARED, &[], t0);
        let mut stranger = Peer::new(9, 5);
        assert_eq!(
            deliver(&mut ep, SHARED, addr(7000), &stranger.packet(), t0).0,
            Outcome::Unclaimed
        );
        let mut peer = Peer::new(1, 6);
        let (outcome, _) = deliver(&mut ep, SHARED, addr(7001), &peer.packet(), t0);
        assert!(matches!(outcome, Outcome::Send(t) if t.dest == addr(6001)));
        assert_eq!(ep.stats(CallNo(1)).unwrap().remote, Some(addr(7001)));
        assert_eq!(ep.stats(CallNo(0)).unwrap().remote, None);
    }
}
