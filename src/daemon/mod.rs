//! The daemon: the registry of running calls and the control methods that act on them.

mod call_task;
pub mod params;
mod stanza;
mod worker;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use self::call_task::{CallCore, CallTask, Command, FilePlay, Recording, TrackIo};
use self::params::{
    CallIdParams, MuteParams, PeerStateParams, PlayParams, RecordParams, SinkParams, SourceParams,
    StartParams, TerminateParams, TrackParamsIn, VideoParams, parse_bind,
};
use self::worker::{SharedPort, WorkerMsg};
use crate::call::{
    CallSession, CallSetup, CallStats, CallTimers, Candidate, MediaKind, TrackParams, TrackSetup,
};
use crate::config::Config;
use crate::control::{
    CALL_EXISTS, INTERNAL_ERROR, METHOD_NOT_FOUND, NO_FREE_PORT, RpcError, TOO_MANY_CALLS,
    decode_params,
};
use crate::media::{OggOpusRecorder, OpusClip};
use crate::net::{BindError, MediaSocketOptions, bind_media, bind_udp};
use crate::srtp::SrtpOptions;

/// Where a call's commands go: its own task, or the single-port worker that runs it.
#[derive(Clone)]
enum CallRoute {
    Task(mpsc::Sender<Command>),
    Worker { id: u64, port: Arc<SharedPort> },
}

impl CallRoute {
    /// Hands `command` to the call; `Err` when the call is gone.
    async fn send(&self, command: Command) -> Result<(), ()> {
        match self {
            CallRoute::Task(tx) => tx.send(command).await.map_err(|_| ()),
            CallRoute::Worker { id, port } => port
                .tx
                .send(WorkerMsg::Command { id: *id, command })
                .await
                .map_err(|_| ()),
        }
    }
}

struct CallHandle {
    commands: CallRoute,
    /// The wa-e2e call key, kept to re-derive receive keys when another device answers.
    call_key: Option<(crate::keying::wa_e2e::CallKey, Option<usize>)>,
    /// What `call.start` returned (bound addresses), repeated when an accept starts the call.
    started: Value,
}

/// The daemon's state, shared by the control connections.
pub struct Daemon {
    config: Config,
    calls: Mutex<HashMap<String, CallHandle>>,
    events: broadcast::Sender<Value>,
    started: Instant,
    shutdown: watch::Sender<bool>,
    /// The single-port workers, started with the first call when `media.single_port` is set.
    shared: Mutex<Vec<Arc<SharedPort>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// The methods `Daemon::handle` answers, for `srtpctl` and error messages.
pub const METHODS: &[&str] = &[
    "call.start",
    "call.stanza",
    "call.mute",
    "call.video",
    "call.peer_state",
    "call.play",
    "call.record",
    "call.stats",
    "call.list",
    "call.terminate",
    "events.subscribe",
    "daemon.status",
    "daemon.shutdown",
];

impl Daemon {
    /// A daemon with `config` and no calls.
    pub fn new(config: Config) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Daemon {
            config,
            calls: Mutex::new(HashMap::new()),
            events,
            started: Instant::now(),
            shutdown,
            shared: Mutex::new(Vec::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A receiver of event notifications' params.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Resolves when shutdown was requested.
    pub fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Asks the daemon to shut down.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Answers one control method (`events.subscribe` is the connection's business).
    pub async fn handle(&self, method: &str, params: &Value) -> Result<Value, RpcError> {
        match method {
            "call.start" => self.start(decode_params(params)?, false).await,
            "call.stanza" => self.stanza(decode_params(params)?).await,
            "call.mute" => {
                let p: MuteParams = decode_params(params)?;
                self.gate(&p.call_id, p.media, p.muted).await?;
                Ok(json!({"call_id": p.call_id, "media": p.media, "muted": p.muted}))
            }
            "call.video" => {
                let p: VideoParams = decode_params(params)?;
                self.gate(&p.call_id, MediaKind::Video, !p.enabled).await?;
                Ok(json!({"call_id": p.call_id, "enabled": p.enabled}))
            }
            "call.play" => {
                let p: PlayParams = decode_params(params)?;
                let commands = self.handle_of(&p.call_id)?;
                // The file is checked before anything changes: on error the track keeps its source.
                let clip = load_clip(&p.path, "path")?;
                let (packets, samples) = (clip.packets.len(), clip.samples());
                let (kind, looping) = (p.media, p.looping);
                let exists = Self::ask(commands, &p.call_id, |reply| Command::Play {
                    kind,
                    clip,
                    looping,
                    reply,
                })
                .await?;
                if !exists {
                    return Err(RpcError::invalid_param(
                        "media",
                        format!("the call has no {} track", kind.name()),
                    ));
                }
                Ok(json!({
                    "call_id": p.call_id, "media": p.media, "packets": packets,
                    "duration_ms": samples / 48, "loop": p.looping,
                }))
            }
            "call.record" => {
                let p: RecordParams = decode_params(params)?;
                let commands = self.handle_of(&p.call_id)?;
                let recorder = match &p.path {
                    Some(path) => Some(create_recorder(path, "path")?),
                    None => None,
                };
                let kind = p.media;
                Self::ask(commands, &p.call_id, |reply| Command::Record {
                    kind,
                    recorder,
                    reply,
                })
                .await?;
                Ok(json!({"call_id": p.call_id, "media": p.media, "recording": p.path}))
            }
            "call.peer_state" => {
                let p: PeerStateParams = decode_params(params)?;
                if p.muted.is_none() && p.hold.is_none() && p.video.is_none() {
                    return Err(RpcError::invalid_param(
                        "muted",
                        "give at least one of muted, hold and video",
                    ));
                }
                self.handle_of(&p.call_id)?;
                if p.muted.is_some() || p.hold.is_some() {
                    let held = p.muted.unwrap_or(false) || p.hold.unwrap_or(false);
                    self.set_peer_muted(&p.call_id, held).await?;
                }
                if let Some(on) = p.video {
                    self.set_peer_video(&p.call_id, on).await?;
                }
                let stats = self.stats(&p.call_id).await?;
                Ok(
                    json!({"call_id": p.call_id, "peer_muted": stats.peer_muted, "peer_video": stats.peer_video}),
                )
            }
            "call.stats" => {
                let p: CallIdParams = decode_params(params)?;
                Ok(json!(self.stats(&p.call_id).await?))
            }
            "call.list" => Ok(json!(self.list().await)),
            "call.terminate" => {
                let p: TerminateParams = decode_params(params)?;
                let reason = p.reason.unwrap_or_else(|| "terminated".to_owned());
                Ok(json!(self.terminate(&p.call_id, reason).await?))
            }
            "daemon.status" => {
                let ports: Vec<_> = self
                    .shared
                    .lock()
                    .expect("shared lock")
                    .iter()
                    .map(|p| p.stats())
                    .collect();
                Ok(json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "pid": std::process::id(),
                    "uptime_s": self.started.elapsed().as_secs(),
                    "calls": self.calls.lock().expect("calls lock").len(),
                    "shared_ports": ports,
                }))
            }
            "daemon.shutdown" => {
                self.request_shutdown();
                Ok(json!({"shutting_down": true}))
            }
            other => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!(
                    "method not found: {other:?}; methods are {}",
                    METHODS.join(", ")
                ),
            )),
        }
    }

    fn handle_of(&self, call_id: &str) -> Result<CallRoute, RpcError> {
        self.calls
            .lock()
            .expect("calls lock")
            .get(call_id)
            .map(|h| h.commands.clone())
            .ok_or_else(|| RpcError::no_such_call(call_id))
    }

    /// Sends a command carrying a reply channel to a call's task and waits for the answer.
    async fn ask<T>(
        commands: CallRoute,
        call_id: &str,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RpcError> {
        let (reply, answer) = oneshot::channel();
        commands
            .send(command(reply))
            .await
            .map_err(|()| RpcError::no_such_call(call_id))?;
        answer.await.map_err(|_| RpcError::no_such_call(call_id))
    }

    async fn gate(&self, call_id: &str, kind: MediaKind, gated: bool) -> Result<(), RpcError> {
        let commands = self.handle_of(call_id)?;
        if Self::ask(commands, call_id, |reply| Command::Gate {
            kind,
            gated,
            reply,
        })
        .await?
        {
            Ok(())
        } else {
            Err(RpcError::invalid_param(
                "media",
                format!("call {call_id:?} has no {} track", kind.name()),
            ))
        }
    }

    /// Publishes an event to subscribers.
    fn publish(&self, event: Value) {
        let _ = self.events.send(event);
    }

    /// Sends a call's task a command that needs no answer.
    async fn tell(&self, call_id: &str, command: Command) -> Result<(), RpcError> {
        self.handle_of(call_id)?
            .send(command)
            .await
            .map_err(|()| RpcError::no_such_call(call_id))
    }

    /// Tells a call whether the peer's video is on.
    pub async fn set_peer_video(&self, call_id: &str, on: bool) -> Result<(), RpcError> {
        self.tell(call_id, Command::PeerVideo(on)).await
    }

    /// Tells a call whether its peer is muted or on hold.
    pub async fn set_peer_muted(&self, call_id: &str, muted: bool) -> Result<(), RpcError> {
        self.tell(call_id, Command::PeerMuted(muted)).await
    }

    async fn stats(&self, call_id: &str) -> Result<CallStats, RpcError> {
        Self::ask(self.handle_of(call_id)?, call_id, Command::Stats).await
    }

    /// What `call.start` returned for a running call.
    fn started(&self, call_id: &str) -> Option<Value> {
        self.calls
            .lock()
            .expect("calls lock")
            .get(call_id)
            .map(|h| h.started.clone())
    }

    fn call_ids(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("calls lock")
            .keys()
            .cloned()
            .collect()
    }

    async fn list(&self) -> Vec<Value> {
        let ids = self.call_ids();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(s) = self.stats(&id).await {
                out.push(json!({"call_id": s.call_id, "state": s.state, "remote": s.remote}));
            }
        }
        out
    }

    /// Ends a call: its media stops, its sockets close, and `call.ended` is published.
    pub async fn terminate(&self, call_id: &str, reason: String) -> Result<CallStats, RpcError> {
        let handle = self
            .calls
            .lock()
            .expect("calls lock")
            .remove(call_id)
            .ok_or_else(|| RpcError::no_such_call(call_id))?;
        Self::ask(handle.commands, call_id, |reply| Command::Terminate {
            reason,
            reply,
        })
        .await
    }

    /// Terminates every call (on shutdown).
    pub async fn terminate_all(&self, reason: &str) {
        let ids = self.call_ids();
        for id in ids {
            let _ = self.terminate(&id, reason.to_owned()).await;
        }
    }

    /// Starts a call (ringing: checks and keys ready, no media until answered).
    async fn start(&self, p: StartParams, ringing: bool) -> Result<Value, RpcError> {
        p.validate()?;
        let (keys, call_key) = p.call_keys()?;
        let tag_len = keys.rtp_tag_len;
        {
            let calls = self.calls.lock().expect("calls lock");
            if calls.contains_key(&p.call_id) {
                return Err(RpcError::new(
                    CALL_EXISTS,
                    format!("call already exists: {:?}", p.call_id),
                ));
            }
            if calls.len() >= self.config.calls.max_calls {
                return Err(RpcError::new(
                    TOO_MANY_CALLS,
                    format!(
                        "too many calls: the daemon carries at most {}",
                        self.config.calls.max_calls
                    ),
                ));
            }
        }

        let shared = match self.config.media.single_port {
            0 => None,
            _ => Some(self.shared_port(&p)?),
        };
        let own = shared.is_none();
        let media = match &shared {
            Some(port) => port.media_socket.clone(),
            None => Arc::new(self.bind_media_socket(&p)?),
        };
        let local = media.local_addr().map_err(internal)?;
        let m = &self.config.media;
        let plain = MediaSocketOptions {
            dscp: 0,
            recv_buffer: m.recv_buffer_bytes,
            send_buffer: m.send_buffer_bytes,
        };
        let audio = open_track_io(p.audio.as_ref(), "audio", own, plain)?;
        let video = open_track_io(p.video.as_ref(), "video", own, plain)?;
        let track_setup = |t: &Option<TrackParamsIn>, kind| {
            t.as_ref().map(|t| TrackSetup {
                params: TrackParams {
                    payload_type: t.payload_type,
                    clock_rate: t.clock_rate,
                    ptime_ms: t.ptime_ms,
                },
                ssrc: p.ssrc(kind),
            })
        };
        let c = &self.config.calls;
        let setup = CallSetup {
            call_id: p.call_id.clone(),
            keys,
            srtp: SrtpOptions {
                replay_window: self.config.srtp.replay_window,
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
            audio: track_setup(&p.audio, MediaKind::Audio),
            video: track_setup(&p.video, MediaKind::Video),
            timers: CallTimers {
                check_timeout: Duration::from_millis(c.candidate_check_timeout_ms),
                keepalive: Duration::from_millis(c.keepalive_interval_ms),
                rtcp_interval: Duration::from_millis(c.rtcp_interval_ms),
                media_timeout: Duration::from_secs(c.media_timeout_s),
                media_timeout_held: Duration::from_secs(c.media_timeout_held_s),
            },
            ringing,
            mute_mode: p.mute_mode.unwrap_or(self.config.calls.mute_mode),
        };
        let (now, wall) = call_task::clocks();
        let session = CallSession::new(setup, now, wall)
            .map_err(|e| RpcError::new(crate::control::BAD_KEYING, format!("bad keying: {e}")))?;

        let mut result = json!({"call_id": p.call_id, "local": local});
        let mut sources = Vec::new();
        for (name, kind, io, track) in [
            ("audio", MediaKind::Audio, &audio, &p.audio),
            ("video", MediaKind::Video, &video, &p.video),
        ] {
            if let Some(source) = &io.source {
                result[name] = json!({"source": source.local_addr().map_err(internal)?});
            }
            if let (
                Some(port),
                Some(TrackParamsIn {
                    source:
                        SourceParams::Rtp {
                            ssrc: Some(ssrc), ..
                        },
                    ..
                }),
            ) = (&shared, track)
            {
                result[name] = json!({"source": port.local});
                sources.push((*ssrc, kind));
            }
        }

        let (commands, receiver) = mpsc::channel(16);
        let route = match &shared {
            Some(port) => CallRoute::Worker {
                id: self
                    .next_id
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                port: port.clone(),
            },
            None => CallRoute::Task(commands),
        };
        {
            let mut calls = self.calls.lock().expect("calls lock");
            if calls.contains_key(&p.call_id) {
                return Err(RpcError::new(
                    CALL_EXISTS,
                    format!("call already exists: {:?}", p.call_id),
                ));
            }
            calls.insert(
                p.call_id.clone(),
                CallHandle {
                    commands: route.clone(),
                    call_key: call_key.map(|k| (k, tag_len)),
                    started: result.clone(),
                },
            );
        }
        let core = CallCore::new(session, media, audio, video, self.events.clone());
        match route {
            CallRoute::Worker { id, port } => {
                if port.add(id, Box::new(core), sources).await.is_err() {
                    self.calls.lock().expect("calls lock").remove(&p.call_id);
                    return Err(internal("the shared-port worker stopped"));
                }
            }
            CallRoute::Task(_) => {
                tokio::spawn(
                    CallTask {
                        core,
                        commands: receiver,
                    }
                    .run(),
                );
            }
        }
        tracing::info!(call_id = %p.call_id, %local, "call started");
        let _ = self
            .events
            .send(json!({"event": "call.started", "call_id": p.call_id, "local": local}));
        Ok(result)
    }

    /// The single-port worker for a call (the workers start on first use), after checking
    /// that the call fits single-port mode: the one whose port `bind` names, or the one with
    /// the fewest calls.
    fn shared_port(&self, p: &StartParams) -> Result<Arc<SharedPort>, RpcError> {
        let m = &self.config.media;
        let ip = m.bind_v4;
        let workers = m.worker_count();
        let ports = m.single_port..=m.single_port + (workers - 1) as u16;
        let mut pinned = None;
        if let Some(b) = &p.bind {
            let (bind_ip, port) = parse_bind(b)?;
            if bind_ip != ip || (port != 0 && !ports.contains(&port)) {
                return Err(RpcError::invalid_param(
                    "bind",
                    format!(
                        "single-port mode: calls use {ip} and ports {}..={}",
                        ports.start(),
                        ports.end()
                    ),
                ));
            }
            if port != 0 {
                pinned = Some(usize::from(port - m.single_port));
            }
        }
        if let Some(i) = p
            .candidates
            .iter()
            .position(|c| c.ip.is_ipv6() != ip.is_ipv6())
        {
            return Err(RpcError::invalid_param(
                &format!("candidates[{i}].ip"),
                format!("single-port mode serves the address family of {ip} only"),
            ));
        }
        for (name, track) in [("audio", &p.audio), ("video", &p.video)] {
            let Some(track) = track else { continue };
            if let SourceParams::Rtp { listen, ssrc } = &track.source {
                if listen.is_some() || ssrc.is_none() {
                    return Err(RpcError::invalid_param(
                        &format!("{name}.source.ssrc"),
                        "single-port mode takes every local producer on one port and tells them apart by SSRC: give the producer's ssrc, and no listen address",
                    ));
                }
            }
            if let SinkParams::Rtp { forward } = &track.sink {
                if !forward.is_ipv4() {
                    return Err(RpcError::invalid_param(
                        &format!("{name}.sink.forward"),
                        "single-port mode sends to sinks from 127.0.0.1: give an IPv4 address",
                    ));
                }
            }
        }
        let mut shared = self.shared.lock().expect("shared lock");
        if shared.is_empty() {
            *shared = self.start_workers(ports)?;
        }
        let port = match pinned {
            Some(i) => &shared[i],
            None => shared
                .iter()
                .min_by_key(|w| w.load())
                .expect("at least one worker"),
        };
        Ok(port.clone())
    }

    /// Binds every single-port worker's sockets, then starts the workers.
    fn start_workers(
        &self,
        ports: std::ops::RangeInclusive<u16>,
    ) -> Result<Vec<Arc<SharedPort>>, RpcError> {
        let m = &self.config.media;
        let options = MediaSocketOptions {
            dscp: m.dscp_audio,
            recv_buffer: m.recv_buffer_bytes,
            send_buffer: m.send_buffer_bytes,
        };
        let sockets = ports
            .map(|port| {
                let media = bind_media(m.bind_v4, port, port..=port, options)?;
                let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0);
                let local =
                    bind_udp(addr, options).map_err(|source| BindError::Bind { addr, source })?;
                Ok((media, local))
            })
            .collect::<Result<Vec<_>, BindError>>()
            .map_err(|e| RpcError::new(NO_FREE_PORT, e.to_string()))?;
        sockets
            .into_iter()
            .map(|(media, local)| {
                let port = SharedPort::spawn(media, local).map_err(internal)?;
                tracing::info!(media = %port.media, local = %port.local, "single-port worker");
                Ok(Arc::new(port))
            })
            .collect()
    }

    fn bind_media_socket(&self, p: &StartParams) -> Result<UdpSocket, RpcError> {
        let m = &self.config.media;
        let (ip, port) = match &p.bind {
            Some(b) => parse_bind(b)?,
            None => {
                let v6 = p.candidates.first().is_some_and(|c| c.ip.is_ipv6());
                (if v6 { m.bind_v6 } else { m.bind_v4 }, 0)
            }
        };
        if let Some((i, c)) = p
            .candidates
            .iter()
            .enumerate()
            .find(|(_, c)| c.ip.is_ipv6() != ip.is_ipv6())
        {
            return Err(RpcError::invalid_param(
                &format!("candidates[{i}].ip"),
                format!(
                    "{} is not in the address family of the bind address {ip}",
                    c.ip
                ),
            ));
        }
        let options = MediaSocketOptions {
            dscp: if p.video.is_some() {
                m.dscp_video
            } else {
                m.dscp_audio
            },
            recv_buffer: m.recv_buffer_bytes,
            send_buffer: m.send_buffer_bytes,
        };
        let socket =
            bind_media(ip, port, m.port_min..=m.port_max, options).map_err(|e| match e {
                BindError::NoFreePort { .. } => RpcError::new(NO_FREE_PORT, e.to_string()),
                BindError::Bind { .. } => RpcError::new(NO_FREE_PORT, e.to_string()),
            })?;
        UdpSocket::from_std(socket).map_err(internal)
    }
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(INTERNAL_ERROR, format!("internal error: {e}"))
}

/// Opens a track's local source and sink sockets (with `plain`'s buffer sizes: local producers
/// send in bursts too), if the call has sockets of its own (`own`; on the shared port the
/// worker's local socket serves them).
fn open_track_io(
    track: Option<&TrackParamsIn>,
    name: &str,
    own: bool,
    plain: MediaSocketOptions,
) -> Result<TrackIo, RpcError> {
    let Some(track) = track else {
        return Ok(TrackIo {
            source: None,
            sink: None,
            sink_socket: None,
            play: None,
            recording: None,
        });
    };
    let bind = |addr: SocketAddr, field: String| {
        bind_udp(addr, plain)
            .and_then(UdpSocket::from_std)
            .map_err(|e| RpcError::invalid_param(&field, format!("cannot bind {addr}: {e}")))
    };
    let mut play = None;
    let source = match &track.source {
        SourceParams::None => None,
        SourceParams::Rtp { .. } if !own => None,
        SourceParams::Rtp { listen, .. } => {
            let addr = listen.unwrap_or_else(|| SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0));
            Some(bind(addr, format!("{name}.source.listen"))?)
        }
        SourceParams::Silence => {
            play = Some(FilePlay {
                clip: std::sync::Arc::new(OpusClip::silence()),
                looping: true,
                running: None,
            });
            None
        }
        SourceParams::File { path, looping } => {
            play = Some(FilePlay {
                clip: load_clip(path, &format!("{name}.source.path"))?,
                looping: *looping,
                running: None,
            });
            None
        }
    };
    let mut recording = None;
    let (sink, sink_socket) = match track.sink {
        SinkParams::None => (None, None),
        SinkParams::File { ref path } => {
            recording = Some(Recording::new(
                create_recorder(path, &format!("{name}.sink.path"))?,
                track.clock_rate,
            ));
            (None, None)
        }
        SinkParams::Rtp { forward } if !own => (Some(forward), None),
        SinkParams::Rtp { forward } => {
            let from = if forward.ip().is_loopback() {
                SocketAddr::new(
                    if forward.is_ipv6() {
                        IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])
                    } else {
                        IpAddr::from([127, 0, 0, 1])
                    },
                    0,
                )
            } else if forward.is_ipv6() {
                SocketAddr::new(IpAddr::from([0u16; 8]), 0)
            } else {
                SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0)
            };
            (
                Some(forward),
                Some(bind(from, format!("{name}.sink.forward"))?),
            )
        }
    };
    Ok(TrackIo {
        source,
        sink,
        sink_socket,
        play,
        recording,
    })
}

/// Loads an Ogg Opus clip, or -32602 naming `field` and what is wrong with the file.
fn load_clip(path: &std::path::Path, field: &str) -> Result<std::sync::Arc<OpusClip>, RpcError> {
    OpusClip::load(path)
        .map(std::sync::Arc::new)
        .map_err(|e| RpcError::invalid_param(field, e))
}

/// Creates a recording file (mono Opus), or -32602 naming `field` when it cannot be written.
fn create_recorder(path: &std::path::Path, field: &str) -> Result<OggOpusRecorder, RpcError> {
    OggOpusRecorder::create(path, 1).map_err(|e| RpcError::invalid_param(field, e))
}
