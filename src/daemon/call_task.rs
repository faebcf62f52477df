//! The I/O shell of one call: owns its sockets and a `CallSession`, and moves datagrams
//! between them with buffers allocated once per call.

use std::net::SocketAddr;
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::call::{CallEvent, CallSession, CallStats, Candidate, Inbound, MediaKind};
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
    /// Where plain RTP from the local producer arrives.
    pub source: Option<UdpSocket>,
    /// Where decrypted RTP goes, and the socket to send it from.
    pub sink: Option<(UdpSocket, SocketAddr)>,
}

/// Runs a call until it is terminated or the daemon shuts down.
pub struct CallTask {
    /// The session.
    pub session: CallSession,
    /// The media socket facing the peer.
    pub media: UdpSocket,
    /// Audio endpoints.
    pub audio: TrackIo,
    /// Video endpoints.
    pub video: TrackIo,
    /// Commands from the daemon.
    pub commands: mpsc::Receiver<Command>,
    /// Event notifications to subscribers.
    pub events: broadcast::Sender<Value>,
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
        let call_id = self.session.call_id().to_owned();
        let mut net_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let mut audio_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let mut video_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let mut comfort_buf = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
        let room = self.session.overhead();
        self.session.handle_timeout(Instant::now().into_std());
        self.flush().await;
        loop {
            let deadline = Instant::from_std(self.session.poll_timeout());
            tokio::select! {
                r = self.media.recv_from(&mut net_buf) => {
                    if let Ok((n, from)) = r {
                        self.on_network(&mut net_buf[..n], from).await;
                    }
                }
                r = recv_on(self.audio.source.as_ref(), &mut audio_buf[..MAX_DATAGRAM - room]) => {
                    if let Ok(n) = r {
                        self.on_source(MediaKind::Audio, &mut audio_buf, n).await;
                    }
                }
                r = recv_on(self.video.source.as_ref(), &mut video_buf[..MAX_DATAGRAM - room]) => {
                    if let Ok(n) = r {
                        self.on_source(MediaKind::Video, &mut video_buf, n).await;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.session.handle_timeout(Instant::now().into_std());
                }
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Gate { kind, gated, reply }) => {
                        let now = Instant::now().into_std();
                        let _ = reply.send(self.session.set_gated(kind, gated, now));
                    }
                    Some(Command::PeerMuted(muted)) => self.session.set_peer_muted(muted),
                    Some(Command::PeerVideo(on)) => self.session.set_peer_video(on),
                    Some(Command::Answer { candidates, rekey, reply }) => {
                        let was_ringing = self.session.ringing();
                        if let Some((profile, rx)) = rekey {
                            if let Err(e) = self.session.rekey_rx(profile, &rx) {
                                tracing::warn!(call_id, "rekey failed: {e}");
                            }
                        }
                        self.session.answer(&candidates, Instant::now().into_std());
                        let _ = reply.send(was_ringing);
                    }
                    Some(Command::Stats(reply)) => {
                        let _ = reply.send(self.session.stats());
                    }
                    Some(Command::Terminate { reason, reply }) => {
                        let stats = self.session.stats();
                        let _ = self.events.send(json!({
                            "event": "call.ended", "call_id": call_id, "reason": reason, "stats": stats,
                        }));
                        let _ = reply.send(stats);
                        return;
                    }
                    None => return,
                },
            }
            self.flush().await;
            let now = Instant::now().into_std();
            while let Some((n, to)) = self.session.poll_comfort(&mut comfort_buf, now) {
                let _ = self.media.send_to(&comfort_buf[..n], to).await;
            }
        }
    }

    async fn on_network(&mut self, datagram: &mut [u8], from: SocketAddr) {
        let now = Instant::now().into_std();
        if let Inbound::Media { kind, len } = self.session.on_network(datagram, from, now) {
            let io = match kind {
                MediaKind::Audio => &self.audio,
                MediaKind::Video => &self.video,
            };
            if let Some((socket, to)) = &io.sink {
                let _ = socket.send_to(&datagram[..len], to).await;
            }
        }
    }

    async fn on_source(&mut self, kind: MediaKind, buf: &mut [u8], len: usize) {
        let now = Instant::now().into_std();
        if let Some((n, to)) = self.session.on_source(kind, buf, len, now) {
            let _ = self.media.send_to(&buf[..n], to).await;
        }
    }

    /// Sends what the session queued and publishes its events.
    async fn flush(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            let _ = self.media.send_to(&t.data, t.dest).await;
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
    }
}

/// When the session was created, for its RTCP clock.
pub fn clocks() -> (std::time::Instant, SystemTime) {
    (Instant::now().into_std(), SystemTime::now())
}
