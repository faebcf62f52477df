//! The I/O shell of one call: owns its sockets and a `CallSession`, and moves datagrams
//! between them with buffers allocated once per call.

use std::net::SocketAddr;
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use std::sync::Arc;

use crate::call::{CallEvent, CallSession, CallStats, Candidate, Inbound, MediaKind};
use crate::media::opus::packet_samples;
use crate::media::{OggOpusRecorder, OpusClip, Playback};
use crate::net::send_now;
use crate::rtp::RtpPacket;
use crate::srtp::{MasterKey, SrtpProfile};

/// Largest datagram srtpd handles; larger ones are truncated by the kernel and fail
/// authentication.
const MAX_DATAGRAM: usize = 2048;

/// What the daemon asks of a running call.
pub enum Command {
    /// Gate or ungate our sending on a track; replies whether the track exists.
    Gate {
        /// Which track.
        kind: MediaKind,
        /// Gated or not.
        gated: bool,
        /// Whether there is such a track.
        reply: oneshot::Sender<bool>,
    },
    /// The peer's mute or hold state.
    PeerMuted(bool),
    /// The peer's video state.
    PeerVideo(bool),
    /// The call was answered: start media with these candidates added, after re-deriving
    /// the receive keys if the answering device is not the one assumed. Replies whether the
    /// call was ringing.
    Answer {
        /// Candidates from the accept.
        candidates: Vec<Candidate>,
        /// New receive keys.
        rekey: Option<(SrtpProfile, MasterKey)>,
        /// Whether the call was ringing.
        reply: oneshot::Sender<bool>,
    },
    /// A statistics snapshot.
    Stats(oneshot::Sender<CallStats>),
    /// Play an Ogg Opus clip as the track's source.
    Play {
        /// Which track.
        kind: MediaKind,
        /// The clip.
        clip: Arc<OpusClip>,
        /// Start again at the end.
        looping: bool,
        /// Whether the call has that track (nothing changes if not).
        reply: oneshot::Sender<bool>,
    },
    /// Start recording the track to a new file (finishing any previous one), or stop.
    Record {
        /// Which track.
        kind: MediaKind,
        /// The new recorder, or `None` to stop.
        recorder: Option<OggOpusRecorder>,
        /// Sent when the previous recording is finished.
        reply: oneshot::Sender<()>,
    },
    /// End the call; replies with the final statistics.
    Terminate {
        /// Reported in `call.ended`.
        reason: String,
        /// Final statistics.
        reply: oneshot::Sender<CallStats>,
    },
}

/// A track's local endpoints.
pub struct TrackIo {
    /// Where plain RTP from the local producer arrives (calls on their own sockets; on the
    /// shared port, the worker's local socket takes it).
    pub source: Option<UdpSocket>,
    /// Where decrypted RTP goes.
    pub sink: Option<SocketAddr>,
    /// The socket to send it from (calls on their own sockets; on the shared port, the
    /// worker's local socket).
    pub sink_socket: Option<UdpSocket>,
    /// An Ogg Opus clip that replaces the RTP source while it plays.
    pub play: Option<FilePlay>,
    /// The recording of what this track receives.
    pub recording: Option<Recording>,
}

impl TrackIo {
    /// Records an authenticated, decrypted packet if the track records; returns where the
    /// packet goes next, if the track has an RTP sink.
    pub fn deliver(&mut self, plain: &[u8]) -> Option<SocketAddr> {
        if let Some(recording) = &mut self.recording {
            recording.record(plain);
        }
        self.sink
    }
}

/// A clip to play: it starts when media may flow (not while ringing).
pub struct FilePlay {
    /// The clip.
    pub clip: Arc<OpusClip>,
    /// Start again at the end.
    pub looping: bool,
    /// The playback, once started.
    pub running: Option<Playback>,
}

/// Received Opus written to an Ogg Opus file; gaps in the RTP timestamps (loss, a muted peer)
/// are kept as time.
pub struct Recording {
    recorder: OggOpusRecorder,
    clock_rate: u32,
    expected_ts: Option<u32>,
}

impl Recording {
    /// Records with `recorder` a track whose RTP clock runs at `clock_rate`.
    pub fn new(recorder: OggOpusRecorder, clock_rate: u32) -> Self {
        Recording {
            recorder,
            clock_rate: clock_rate.max(1),
            expected_ts: None,
        }
    }

    fn record(&mut self, rtp: &[u8]) {
        let Ok(packet) = RtpPacket::new_checked(rtp) else {
            return;
        };
        let Ok(payload) = packet.payload_unpadded() else {
            return;
        };
        let Some(samples) = packet_samples(payload) else {
            return;
        };
        let ts = packet.timestamp();
        let clock = u64::from(self.clock_rate);
        let gap = match self.expected_ts {
            None => 0,
            Some(expected) => match ts.wrapping_sub(expected) {
                // Late or reordered: it cannot be placed in the past of the file.
                d if d >= 0x8000_0000 => return,
                d => u64::from(d) * 48_000 / clock,
            },
        };
        if let Err(e) = self.recorder.write(payload, gap) {
            tracing::warn!("recording: {e}");
        }
        self.expected_ts = Some(ts.wrapping_add((u64::from(samples) * clock / 48_000) as u32));
    }

    /// Writes the end of the stream.
    pub fn finish(self) {
        if let Err(e) = self.recorder.finish() {
            tracing::warn!("finishing a recording: {e}");
        }
    }
}

/// One call's state and the I/O that is not on the batched fast path: timers, commands,
/// playback, recording and events. A [`CallTask`] runs one on its own sockets; the shared-port
/// worker runs many.
pub struct CallCore {
    /// The session.
    pub session: CallSession,
    /// The media socket facing the peer (the worker's shared one in single-port mode).
    pub media: Arc<UdpSocket>,
    /// Audio endpoints.
    pub audio: TrackIo,
    /// Video endpoints.
    pub video: TrackIo,
    /// Event notifications to subscribers.
    pub events: broadcast::Sender<Value>,
    /// Scratch for comfort and clip packets, allocated once per call.
    scratch: Box<[u8]>,
}

/// Whether a call goes on after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// It runs on.
    Continue,
    /// It ended (terminated, or the daemon let go of it).
    Ended,
}

impl CallCore {
    /// A call on `media`.
    pub fn new(
        session: CallSession,
        media: Arc<UdpSocket>,
        audio: TrackIo,
        video: TrackIo,
        events: broadcast::Sender<Value>,
    ) -> Self {
        CallCore {
            session,
            media,
            audio,
            video,
            events,
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
        }
    }

    /// Runs the session's timers for the first time.
    pub fn start(&mut self, now: std::time::Instant) {
        self.session.handle_timeout(now);
        self.after(now);
    }

    /// When [`Self::on_timer`] should next run.
    pub fn next_deadline(&mut self) -> std::time::Instant {
        let mut deadline = self.session.poll_timeout();
        for kind in [MediaKind::Audio, MediaKind::Video] {
            if let Some(due) = self.start_playback(kind) {
                deadline = deadline.min(due);
            }
        }
        deadline
    }

    /// Runs what is due at `now`: the session's timers and clip packets.
    pub fn on_timer(&mut self, now: std::time::Instant) {
        self.session.handle_timeout(now);
        for kind in [MediaKind::Audio, MediaKind::Video] {
            self.play_due(kind, now);
        }
        self.after(now);
    }

    /// Whether plain RTP from the track's local producer is to be sent (no clip plays).
    pub fn takes_source(&self, kind: MediaKind) -> bool {
        self.io(kind).play.is_none()
    }

    /// Carries out a command from the daemon.
    pub fn on_command(&mut self, command: Option<Command>, now: std::time::Instant) -> Flow {
        let call_id = self.session.call_id().to_owned();
        match command {
            Some(Command::Gate { kind, gated, reply }) => {
                let _ = reply.send(self.session.set_gated(kind, gated, now));
            }
            Some(Command::PeerMuted(muted)) => self.session.set_peer_muted(muted),
            Some(Command::PeerVideo(on)) => self.session.set_peer_video(on),
            Some(Command::Answer {
                candidates,
                rekey,
                reply,
            }) => {
                let was_ringing = self.session.ringing();
                if let Some((profile, rx)) = rekey {
                    if let Err(e) = self.session.rekey_rx(profile, &rx) {
                        tracing::warn!(call_id, "rekey failed: {e}");
                    }
                }
                self.session.answer(&candidates, now);
                let _ = reply.send(was_ringing);
            }
            Some(Command::Stats(reply)) => {
                let _ = reply.send(self.session.stats());
            }
            Some(Command::Play {
                kind,
                clip,
                looping,
                reply,
            }) => {
                let exists = self.session.has_track(kind);
                if exists {
                    self.io_mut(kind).play = Some(FilePlay {
                        clip,
                        looping,
                        running: None,
                    });
                }
                let _ = reply.send(exists);
            }
            Some(Command::Record {
                kind,
                recorder,
                reply,
            }) => {
                let clock = self.session.clock_rate(kind).unwrap_or(48_000);
                let io = self.io_mut(kind);
                if let Some(old) = io.recording.take() {
                    old.finish();
                }
                io.recording = recorder.map(|r| Recording::new(r, clock));
                let _ = reply.send(());
            }
            Some(Command::Terminate { reason, reply }) => {
                self.finish_recordings();
                let stats = self.session.stats();
                let _ = self.events.send(json!({
                    "event": "call.ended", "call_id": call_id, "reason": reason, "stats": stats,
                }));
                let _ = reply.send(stats);
                return Flow::Ended;
            }
            None => {
                self.finish_recordings();
                return Flow::Ended;
            }
        }
        self.after(now);
        Flow::Continue
    }

    /// The track's endpoints.
    pub fn io_mut(&mut self, kind: MediaKind) -> &mut TrackIo {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }

    /// Hints to the CPU the state that a packet from track `kind`'s local producer reads.
    pub fn prefetch_source(&self, kind: MediaKind) {
        crate::prefetch::prefetch(self.io(kind));
        self.session.prefetch_source(kind);
    }

    /// Hints the call's own fields that the other prefetches read to find the rest; issued
    /// a few packets before them.
    pub fn prefetch_outer(&self) {
        crate::prefetch::prefetch(&self.audio.play);
        crate::prefetch::prefetch(&self.video.play);
        self.session.prefetch_outer();
    }

    /// Hints to the CPU the state that a media packet from the peer reads.
    pub fn prefetch_network(&self) {
        crate::prefetch::prefetch(&self.audio);
        crate::prefetch::prefetch(&self.video);
        self.session.prefetch_network();
    }

    fn io(&self, kind: MediaKind) -> &TrackIo {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    fn finish_recordings(&mut self) {
        for io in [&mut self.audio, &mut self.video] {
            if let Some(r) = io.recording.take() {
                r.finish();
            }
        }
    }

    /// Starts a pending clip once media may flow; returns when its next packet is due.
    fn start_playback(&mut self, kind: MediaKind) -> Option<std::time::Instant> {
        let ringing = self.session.ringing();
        let io = match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        };
        let play = io.play.as_mut()?;
        if play.running.is_none() {
            if ringing {
                return None;
            }
            let start = std::time::Instant::now();
            play.running = Some(Playback::new(play.clip.clone(), play.looping, start));
            self.session.switch_source(kind);
        }
        // An ended clip is due at once, so the timer branch reports the end.
        let next = play.running.as_ref()?.next_deadline();
        Some(next.unwrap_or_else(std::time::Instant::now))
    }

    /// Sends the clip packets of track `kind` that are due, as RTP through the track.
    fn play_due(&mut self, kind: MediaKind, now: std::time::Instant) {
        let clock = u64::from(self.session.clock_rate(kind).unwrap_or(48_000));
        let room = self.session.overhead();
        loop {
            let io = match kind {
                MediaKind::Audio => &mut self.audio,
                MediaKind::Video => &mut self.video,
            };
            let Some(running) = io.play.as_mut().and_then(|p| p.running.as_mut()) else {
                return;
            };
            let buf = &mut self.scratch;
            let len = match running.poll(now) {
                Some((data, offset)) if 12 + data.len() + room <= buf.len() => {
                    buf[..12].fill(0);
                    buf[0] = 0x80;
                    buf[4..8].copy_from_slice(&((offset * clock / 48_000) as u32).to_be_bytes());
                    buf[12..12 + data.len()].copy_from_slice(data);
                    12 + data.len()
                }
                Some(_) => continue,
                None => {
                    if running.ended() {
                        io.play = None;
                        let call_id = self.session.call_id();
                        let _ = self.events.send(json!({"event": "track.source_ended", "call_id": call_id, "media": kind}));
                    }
                    return;
                }
            };
            if let Some((n, to)) = self.session.on_source(kind, buf, len, now) {
                let _ = send_now(&*self.media, &buf[..n], to);
            }
        }
    }

    /// Sends what the session queued (STUN, RTCP, keepalives, comfort packets) and publishes
    /// its events. Run after anything that fed the session.
    pub fn after(&mut self, now: std::time::Instant) {
        while let Some(t) = self.session.poll_transmit() {
            let _ = send_now(&*self.media, &t.data, t.dest);
        }
        while let Some(event) = self.session.poll_event() {
            let call_id = self.session.call_id();
            let value = match event {
                CallEvent::Connected { remote, how } => {
                    json!({"event": "call.connected", "call_id": call_id, "remote": remote, "via": how})
                }
                CallEvent::RemoteChanged { from, to, how } => {
                    json!({"event": "call.remote_changed", "call_id": call_id, "from": from, "remote": to, "via": how})
                }
                CallEvent::KeyframeNeeded { kind } => {
                    json!({"event": "track.keyframe_needed", "call_id": call_id, "media": kind})
                }
                CallEvent::MediaTimeout { silent_s, held } => {
                    json!({"event": "call.media_timeout", "call_id": call_id, "silent_s": silent_s, "peer_muted": held})
                }
            };
            tracing::info!(call_id, event = %value["event"], "call event");
            let _ = self.events.send(value);
        }
        while let Some((n, to)) = self.session.poll_comfort(&mut self.scratch, now) {
            let _ = send_now(&*self.media, &self.scratch[..n], to);
        }
    }
}

/// Runs a call on its own sockets until it is terminated or the daemon shuts down.
pub struct CallTask {
    /// The call.
    pub core: CallCore,
    /// Commands from the daemon.
    pub commands: mpsc::Receiver<Command>,
}

async fn recv_on(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<usize> {
    match socket {
        Some(s) => s.recv(buf).await,
        None => std::future::pending().await,
    }
}

impl CallTask {
    /// The task body.
    pub async fn run(mut self) {
        let mut net_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let mut audio_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let mut video_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let room = self.core.session.overhead();
        let core = &mut self.core;
        core.start(Instant::now().into_std());
        // One timer for the task's lifetime, moved only when the deadline changes: creating a
        // fresh one per wakeup would register it with the time driver (under its lock) per
        // packet.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let media = core.media.clone();
        loop {
            let deadline = Instant::from_std(core.next_deadline());
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            // Each wakeup reads the clock once and hands that time to everything it runs.
            tokio::select! {
                r = media.recv_from(&mut net_buf) => {
                    let now = Instant::now().into_std();
                    if let Ok((n, from)) = r {
                        Self::on_network(core, &mut net_buf[..n], from, now);
                    }
                    core.after(now);
                }
                r = recv_on(core.audio.source.as_ref(), &mut audio_buf[..MAX_DATAGRAM - room]) => {
                    let now = Instant::now().into_std();
                    if let Ok(n) = r {
                        Self::on_source(core, MediaKind::Audio, &mut audio_buf, n, now);
                    }
                    core.after(now);
                }
                r = recv_on(core.video.source.as_ref(), &mut video_buf[..MAX_DATAGRAM - room]) => {
                    let now = Instant::now().into_std();
                    if let Ok(n) = r {
                        Self::on_source(core, MediaKind::Video, &mut video_buf, n, now);
                    }
                    core.after(now);
                }
                _ = &mut timer => core.on_timer(Instant::now().into_std()),
                cmd = self.commands.recv() => {
                    if core.on_command(cmd, Instant::now().into_std()) == Flow::Ended {
                        return;
                    }
                }
            }
        }
    }

    fn on_network(
        core: &mut CallCore,
        datagram: &mut [u8],
        from: SocketAddr,
        now: std::time::Instant,
    ) {
        if let Inbound::Media { kind, len } = core.session.on_network(datagram, from, now) {
            let io = core.io_mut(kind);
            if let (Some(to), Some(socket)) = (io.deliver(&datagram[..len]), &io.sink_socket) {
                let _ = send_now(socket, &datagram[..len], to);
            }
        }
    }

    fn on_source(
        core: &mut CallCore,
        kind: MediaKind,
        buf: &mut [u8],
        len: usize,
        now: std::time::Instant,
    ) {
        if !core.takes_source(kind) {
            return;
        }
        if let Some((n, to)) = core.session.on_source(kind, buf, len, now) {
            let _ = send_now(&*core.media, &buf[..n], to);
        }
    }
}

/// When the session was created, for its RTCP clock.
pub fn clocks() -> (std::time::Instant, SystemTime) {
    (Instant::now().into_std(), SystemTime::now())
}
