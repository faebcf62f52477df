//! The daemon: the registry of running calls, the workers that run them, and the typed
//! operations the control plane asks for. A call is set up in steps, each of which can fail
//! without leaving anything behind: checked and planned ([`setup`]), its files read, its id
//! reserved ([`registry`]), its worker chosen and its sockets bound ([`placement`]), then
//! handed to its worker ([`driver`]), whose endpoint runs it.

mod bridge;
pub mod driver;
mod error;
mod files;
pub mod metrics;
pub mod metrics_server;
pub mod placement;
mod registry;
pub mod setup;
mod stanza;
mod uring;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use self::driver::{
    NewCall, SharedSockets, SocketRef, Worker, WorkerContext, WorkerGone, WorkerStats,
};
use self::files::Files;
use self::registry::{CallRecord, Registry};
use self::setup::{SinkPlan, SourcePlan, TrackPlan};
use crate::call::{
    CallNo, CallSpec, CallState, CallStats, Candidate, ClipSource, Endpoint, EndpointError,
    EndpointLimits, Event, FileWrite, MediaKind, OwnSockets, Recording, RecordingFormat,
    RemotePolicy, TrackParams, TrackPorts,
};
use crate::config::{Config, Layout};
use crate::media::AudioClip;
use crate::media::codec::CodecKind;
use crate::net::{MediaSocketOptions, bind_media, bind_udp};

pub use error::DaemonError;
pub use setup::{Started, TrackAddrs};

/// Events a slow subscriber may fall behind by before it is told it lost some.
const EVENT_QUEUE: usize = 1024;

/// What `call.play` started.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Playing {
    /// Packets in the clip.
    pub packets: usize,
    /// Its duration, ms.
    pub duration_ms: u64,
}

/// A line of `call.list`.
#[derive(Clone, Debug, Serialize)]
pub struct CallSummary {
    /// The call.
    pub call_id: String,
    /// Where it stands.
    pub state: CallState,
    /// Its remote, once known.
    pub remote: Option<SocketAddr>,
}

/// What `daemon.status` reports.
#[derive(Clone, Debug, Serialize)]
pub struct DaemonStatus {
    /// srtpd's version.
    pub version: &'static str,
    /// The process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Calls running or being set up.
    pub calls: usize,
    /// The socket layout.
    pub layout: Layout,
    /// Each worker's ports and counters.
    pub workers: Vec<WorkerStats>,
}

/// The daemon's state, shared by the control connections.
pub struct Daemon {
    config: Config,
    /// Which remotes and producers are acceptable, and srtpd's own sockets.
    policy: Arc<RemotePolicy>,
    registry: Registry,
    workers: Vec<Worker>,
    files: Arc<Files>,
    events: broadcast::Sender<Event>,
    started: Instant,
    shutdown: watch::Sender<bool>,
    /// Set once the daemon has stopped and published its last events.
    finished: watch::Sender<bool>,
    next_no: AtomicU64,
    /// What is counted for the metrics endpoint.
    metrics: Arc<metrics::Metrics>,
    /// The daemon itself, for tasks of its own (bot bridges) that outlive a request.
    me: std::sync::Weak<Daemon>,
}

impl Daemon {
    /// A daemon with `config` and no calls: its workers start, with their shared sockets.
    pub fn new(config: Config) -> std::io::Result<Arc<Self>> {
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let (shutdown, _) = watch::channel(false);
        let (finished, _) = watch::channel(false);
        let files = Arc::new(Files::start()?);
        let sink = files
            .sink()
            .ok_or_else(|| std::io::Error::other("the file writer stopped"))?;
        let policy = Arc::new(RemotePolicy {
            allow: config.media.remote_allow.clone(),
            deny: config.media.remote_deny.clone(),
            producers: config.media.producer_allow.clone(),
            own: Arc::default(),
        });
        refresh_own_addresses(&policy.own);
        let metrics = Arc::new(metrics::Metrics::default());
        let context = WorkerContext {
            events: events.clone(),
            metrics: metrics.clone(),
            files: sink,
            policy: policy.clone(),
            limits: EndpointLimits {
                trials_per_source_per_s: config.calls.trials_per_source_per_s,
                stun_reply_bytes_per_s: config.calls.stun_reply_bytes_per_s,
            },
        };
        let workers = (0..config.media.worker_count())
            .map(|i| {
                let shared = shared_sockets(&config, i)?;
                Worker::spawn(i, shared, config.media.io, context.clone())
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        tracing::info!(
            workers = workers.len(),
            layout = ?config.media.layout,
            "media workers started"
        );
        Ok(Arc::new_cyclic(|me| Daemon {
            me: me.clone(),
            registry: Registry::new(config.calls.max_calls),
            policy,
            config,
            workers,
            files,
            events,
            started: Instant::now(),
            shutdown,
            finished,
            next_no: AtomicU64::new(1),
            metrics,
        }))
    }

    /// What is counted for the metrics endpoint.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The metrics exposition (Prometheus text format): the traffic totals are read from
    /// every worker now.
    pub async fn metrics_text(&self) -> String {
        let mut traffic = crate::call::TrafficTotals::default();
        for w in &self.workers {
            if let Ok(t) = w.ask(|ep, _| ep.traffic()).await {
                traffic.merge(&t);
            }
        }
        self.metrics.encode(metrics::Snapshot {
            uptime_s: self.started.elapsed().as_secs_f64(),
            calls: self.registry.len() as u64,
            traffic,
            workers: self.workers.iter().map(Worker::stats).collect(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A receiver of events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Resolves when shutdown was requested.
    pub fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Changes to `true` once the daemon has stopped: every call ended and its `call.ended`
    /// published, so that the control connections can deliver them and close.
    pub fn finished(&self) -> watch::Receiver<bool> {
        self.finished.subscribe()
    }

    /// Asks the daemon to shut down.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    fn publish(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Starts a call (`ringing`: offered by a stanza; checks and keys ready, no media until
    /// answered). Returns the addresses it was given.
    pub async fn start_call(
        &self,
        p: crate::control::params::StartParams,
        ringing: bool,
    ) -> Result<Started, DaemonError> {
        refresh_own_addresses(&self.policy.own);
        let plan = setup::plan(&p, &self.config, &self.policy, ringing)?;
        let bridge_format = match &p.bridge {
            Some(b @ crate::control::params::BridgeParams { url: Some(url), .. }) => {
                if plan.setup.audio.is_none() {
                    return Err(DaemonError::invalid(
                        "bridge",
                        "the call has no audio track",
                    ));
                }
                bridge::check("bridge", url, b.format, b.rate, &b.parameters)?
            }
            _ => crate::media::bridge_frame::BridgeFormat::Twilio,
        };
        let audio_clip = source_clip(plan.audio.as_ref(), "audio").await?;
        let video_clip = source_clip(plan.video.as_ref(), "video").await?;
        let reservation = self.registry.reserve(&p.call_id)?;
        let placement = placement::place(&plan, &self.config.media, &self.workers)?;
        let audio_rec = self.recording(plan.audio.as_ref(), "audio").await?;
        let video_rec = match self.recording(plan.video.as_ref(), "video").await {
            Ok(r) => r,
            Err(e) => {
                self.close_recordings([audio_rec]);
                return Err(e);
            }
        };
        let no = CallNo(self.next_no.fetch_add(1, Ordering::Relaxed));
        let silence_when_idle = plan.setup.mute_mode == crate::call::MuteMode::Silence;
        let track = |s: placement::TrackSockets, clip, recording| TrackPorts {
            rtp_source: s.rtp_source,
            clip,
            sink: s.sink,
            recording,
        };
        let preferred = Candidate::preferred(&plan.setup.candidates);
        let local = placement::reachable_local(placement.local, preferred);
        let started = Started {
            call_id: p.call_id.clone(),
            local: Some(local),
            audio: placement.audio.addrs,
            video: placement.video.addrs,
        };
        let spec = CallSpec {
            no,
            setup: plan.setup,
            media: placement.media,
            own_sockets: (0..placement.sockets.len()).map(SocketRef::New).collect(),
            audio: track(placement.audio, audio_clip, audio_rec),
            video: track(placement.video, video_clip, video_rec),
        };
        let worker = &self.workers[placement.worker];
        let call = NewCall {
            spec,
            sockets: placement.sockets,
        };
        match worker.add(call).await {
            Ok(Ok(())) => {}
            Ok(Err(EndpointError::ProducerSsrcTaken(ssrc))) => {
                let field = if matches!(plan.audio.as_ref().map(|t| &t.source), Some(SourcePlan::SharedRtp { ssrc: s }) if *s == ssrc)
                {
                    "audio.source.ssrc"
                } else {
                    "video.source.ssrc"
                };
                return Err(DaemonError::invalid(
                    field,
                    format!(
                        "another call's producer already sends SSRC {} to this worker's shared port",
                        ssrc.0
                    ),
                ));
            }
            Ok(Err(EndpointError::Keying(e))) => return Err(DaemonError::BadKeying(e.to_string())),
            Ok(Err(e)) => return Err(DaemonError::internal(e)),
            Err(WorkerGone) => return Err(DaemonError::internal(WorkerGone)),
        }
        reservation.commit(CallRecord {
            no,
            worker: placement.worker,
            call_key: plan.call_key,
            started: started.clone(),
            silence_when_idle,
        });
        tracing::info!(call_id = %p.call_id, %local, worker = placement.worker, "call started");
        self.metrics.call_started();
        self.publish(Event::CallStarted {
            call_id: p.call_id.as_str().into(),
            local,
        });
        if let Some(b) = p.bridge
            && let Some(url) = b.url
        {
            // Checked before the call was set up; the bot is reached from its own task.
            self.attach_bridge(
                &p.call_id,
                Some((url, bridge_format, b.parameters, b.on_close)),
            )
            .await?;
        }
        Ok(started)
    }

    /// `call.bridge`: checks the request and attaches (or with no `url`, detaches) a bridge.
    pub async fn bridge(
        &self,
        p: crate::control::params::CallBridgeParams,
    ) -> Result<(), DaemonError> {
        let b = p.bridge;
        let bridge = match b.url {
            Some(url) => {
                let format = bridge::check("", &url, b.format, b.rate, &b.parameters)?;
                Some((url, format, b.parameters, b.on_close))
            }
            None => None,
        };
        self.attach_bridge(&p.call_id, bridge).await
    }

    /// Attaches a bot bridge to a running call's audio (replacing one attached before), or
    /// with `None` detaches it. The bot is reached from a task of the bridge's own: failing
    /// to reach it raises `call.bridge_closed`, as losing it later does.
    pub async fn attach_bridge(
        &self,
        call_id: &str,
        bridge: Option<(
            String,
            crate::media::bridge_frame::BridgeFormat,
            serde_json::Map<String, serde_json::Value>,
            crate::control::params::OnBridgeClose,
        )>,
    ) -> Result<(), DaemonError> {
        let (record, worker) = self.call(call_id)?;
        let Some((url, format, parameters, on_close)) = bridge else {
            return self
                .on_call(call_id, |ep, no, now| ep.attach_bridge(no, None, now))
                .await;
        };
        let queue = Arc::new(bridge::BridgeQueue::default());
        let sid = bridge::stream_sid();
        let spec = crate::call::bridge::BridgeSpec {
            format,
            stream_sid: sid.clone(),
            parameters,
            max_queue_ms: self.config.calls.bridge_queue_ms,
            silence_when_idle: record.silence_when_idle,
            outlet: queue.clone(),
        };
        self.on_call(call_id, move |ep, no, now| {
            ep.attach_bridge(no, Some(spec), now)
        })
        .await?;
        let handle = worker.handle();
        let me = self.me.clone();
        let call_id = call_id.to_owned();
        let no = record.no;
        tracing::info!(call_id = %call_id, stream = %sid, "bridging the call's audio to {url}");
        tokio::spawn(async move {
            let end = bridge::run(url, format, queue, handle.clone(), no).await;
            let Some((reason, terminate)) = bridge::on_end(&end, on_close) else {
                return;
            };
            tracing::warn!(call_id = %call_id, "bridge closed: {reason}");
            let _ = handle
                .tell(move |ep, now| {
                    let _ = ep.detach_bridge(no, &sid, now);
                })
                .await;
            let Some(daemon) = me.upgrade() else {
                return;
            };
            daemon.publish(Event::BridgeClosed {
                call_id: call_id.as_str().into(),
                reason,
            });
            if terminate {
                let _ = daemon.terminate(&call_id, "bridge_closed".to_owned()).await;
            }
        });
        Ok(())
    }

    /// Creates a track's recording file, if its sink is one (-32602 naming the field if it
    /// cannot be written).
    async fn recording(
        &self,
        plan: Option<&TrackPlan>,
        name: &str,
    ) -> Result<Option<Recording>, DaemonError> {
        let Some(TrackPlan {
            sink:
                SinkPlan::File {
                    path,
                    format,
                    overwrite,
                },
            params,
            ..
        }) = plan
        else {
            return Ok(None);
        };
        let field = || format!("{name}.sink.path");
        let file = self
            .files
            .create(path, *overwrite)
            .await
            .map_err(|e| DaemonError::invalid(field(), e))?;
        Recording::new(
            file,
            *format,
            params.codec,
            params.payload_type,
            params.clock_rate,
        )
        .map(Some)
        .map_err(|e| {
            if let Some(sink) = self.files.sink() {
                sink.write(FileWrite::close(file));
            }
            DaemonError::invalid(field(), e)
        })
    }

    /// Closes files created for recordings that will not run.
    fn close_recordings<const N: usize>(&self, recordings: [Option<Recording>; N]) {
        if let Some(sink) = self.files.sink() {
            for r in recordings.into_iter().flatten() {
                sink.write(r.finish());
            }
        }
    }

    /// The running call `call_id` and its worker.
    fn call(&self, call_id: &str) -> Result<(CallRecord, &Worker), DaemonError> {
        let record = self.registry.get(call_id)?;
        let worker = &self.workers[record.worker];
        Ok((record, worker))
    }

    /// Runs `job` on the endpoint that has call `call_id`.
    async fn on_call<T: Send + 'static>(
        &self,
        call_id: &str,
        job: impl FnOnce(&mut Endpoint, CallNo, Instant) -> Result<T, EndpointError> + Send + 'static,
    ) -> Result<T, DaemonError> {
        let (record, worker) = self.call(call_id)?;
        let no = record.no;
        match worker
            .ask(move |endpoint, now| job(endpoint, no, now))
            .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(EndpointError::NoSuchTrack(kind))) => Err(DaemonError::invalid(
                "media",
                format!("call {call_id:?} has no {} track", kind.name()),
            )),
            Ok(Err(EndpointError::Keying(e))) => Err(DaemonError::BadKeying(e.to_string())),
            Ok(Err(EndpointError::Dtmf(e))) => Err(DaemonError::invalid("digits", e)),
            Ok(Err(EndpointError::Bridge(e))) => Err(DaemonError::invalid("bridge", e)),
            Ok(Err(EndpointError::Recording(e))) => Err(DaemonError::invalid("path", e)),
            Ok(Err(EndpointError::Bridged)) => Err(DaemonError::invalid(
                "media",
                format!(
                    "call {call_id:?}'s audio is bridged to a bot: detach it (call.bridge with \"url\": null) to play a clip"
                ),
            )),
            Ok(Err(_)) | Err(WorkerGone) => Err(DaemonError::NoSuchCall(call_id.to_owned())),
        }
    }

    /// Gates (mutes) or ungates our sending on a track.
    pub async fn mute(
        &self,
        call_id: &str,
        kind: MediaKind,
        muted: bool,
    ) -> Result<(), DaemonError> {
        self.on_call(call_id, move |ep, no, now| ep.gate(no, kind, muted, now))
            .await
    }

    /// Sends DTMF `events` on a call's audio track, each a tone of `duration_ms`.
    pub async fn dtmf(
        &self,
        call_id: &str,
        events: Vec<u8>,
        duration_ms: u32,
    ) -> Result<(), DaemonError> {
        self.on_call(call_id, move |ep, no, now| {
            ep.send_dtmf(no, events, duration_ms, now)
        })
        .await
    }

    /// Records what the peer's signaling said (muted or on hold, video on or off); returns
    /// the call's statistics after it.
    pub async fn set_peer_state(
        &self,
        call_id: &str,
        muted: Option<bool>,
        video: Option<bool>,
    ) -> Result<CallStats, DaemonError> {
        self.on_call(call_id, move |ep, no, now| {
            ep.set_peer_state(no, muted, video, now)?;
            ep.stats(no)
        })
        .await
    }

    /// Plays an Ogg Opus file as a track's source (the file is read first: on error the track
    /// keeps its source).
    pub async fn play(
        &self,
        call_id: &str,
        kind: MediaKind,
        path: &Path,
        looping: bool,
    ) -> Result<Playing, DaemonError> {
        self.call(call_id)?;
        let path =
            setup::resolve_file(&self.config, path).map_err(|e| DaemonError::invalid("path", e))?;
        // Video clips are Opus as they always were: nothing is transcoded for them.
        let codec = (self.track_params(call_id, kind).await?.codec).unwrap_or(CodecKind::Opus);
        let clip = load_clip(&path, "path", codec).await?;
        let playing = Playing {
            packets: clip.packets.len(),
            duration_ms: clip.samples() / 48,
        };
        self.on_call(call_id, move |ep, no, now| {
            ep.play(no, kind, clip, looping, now)
        })
        .await?;
        Ok(playing)
    }

    /// A call's track's RTP parameters.
    async fn track_params(
        &self,
        call_id: &str,
        kind: MediaKind,
    ) -> Result<TrackParams, DaemonError> {
        self.on_call(call_id, move |ep, no, _| ep.track_params(no, kind))
            .await
    }

    /// Starts recording a track into `path` (finishing an earlier recording of it), or stops.
    pub async fn record(
        &self,
        call_id: &str,
        kind: MediaKind,
        path: Option<&Path>,
        overwrite: bool,
    ) -> Result<(), DaemonError> {
        self.call(call_id)?;
        let file = match path {
            Some(path) => {
                let path = setup::resolve_file(&self.config, path)
                    .map_err(|e| DaemonError::invalid("path", e))?;
                let format = RecordingFormat::for_path(&path);
                let params = self.track_params(call_id, kind).await?;
                format
                    .check(params.codec)
                    .map_err(|e| DaemonError::invalid("path", e))?;
                let file = self
                    .files
                    .create(&path, overwrite)
                    .await
                    .map_err(|e| DaemonError::invalid("path", e))?;
                Some((file, format))
            }
            None => None,
        };
        let result = self
            .on_call(call_id, move |ep, no, _| ep.record(no, kind, file))
            .await;
        // The earlier recording's last bytes leave the worker when the next batch is done.
        self.files.written().await;
        if let (Err(_), Some((file, _)), Some(sink)) = (&result, file, self.files.sink()) {
            sink.write(FileWrite::close(file));
        }
        result
    }

    /// A call's statistics.
    pub async fn stats(&self, call_id: &str) -> Result<CallStats, DaemonError> {
        self.on_call(call_id, |ep, no, _| ep.stats(no)).await
    }

    /// Every running call, briefly.
    pub async fn list(&self) -> Vec<CallSummary> {
        let mut out = Vec::new();
        for id in self.registry.ids() {
            if let Ok(s) = self.stats(&id).await {
                out.push(CallSummary {
                    call_id: s.call_id,
                    state: s.state,
                    remote: s.remote,
                });
            }
        }
        out
    }

    /// Ends a call: its media stops, its sockets close, and `call.ended` is published.
    pub async fn terminate(&self, call_id: &str, reason: String) -> Result<CallStats, DaemonError> {
        let record = self.registry.remove(call_id)?;
        match self.workers[record.worker].remove(record.no, reason).await {
            Ok(Ok(stats)) => {
                // Its recordings are finished on disk before the answer.
                self.files.written().await;
                tracing::info!(call_id, "call ended");
                Ok(stats)
            }
            _ => Err(DaemonError::NoSuchCall(call_id.to_owned())),
        }
    }

    /// Terminates every call (on shutdown): every removal is handed to its worker first, then
    /// the answers are collected, and the recordings are finished on disk once for all.
    pub async fn terminate_all(&self, reason: &str) {
        let mut pending = Vec::new();
        for id in self.registry.ids() {
            let Ok(record) = self.registry.remove(&id) else {
                continue;
            };
            let worker = &self.workers[record.worker];
            if let Ok(answer) = worker.remove_soon(record.no, reason.to_owned()).await {
                pending.push((id, answer));
            }
        }
        for (id, answer) in pending {
            if let Ok(Ok(_)) = answer.await {
                tracing::info!(call_id = %id, "call ended");
            }
        }
        self.files.written().await;
    }

    /// Ends every call, stops the workers and lets the file writer finish.
    pub async fn stop(&self, reason: &str) {
        self.terminate_all(reason).await;
        for w in &self.workers {
            w.stop().await;
        }
        let files = self.files.clone();
        let _ = tokio::task::spawn_blocking(move || files.finish()).await;
        self.finished.send_replace(true);
    }

    /// The daemon's state.
    pub fn status(&self) -> DaemonStatus {
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            uptime_s: self.started.elapsed().as_secs(),
            calls: self.registry.len(),
            layout: self.config.media.layout,
            workers: self.workers.iter().map(Worker::stats).collect(),
        }
    }

    /// What `call.start` answered for a running call.
    fn started(&self, call_id: &str) -> Option<Started> {
        self.registry.get(call_id).ok().map(|r| r.started)
    }
}

/// Tells `own` the machine's interface addresses (a candidate there, on one of srtpd's
/// ports, would be srtpd itself), at most once a second.
fn refresh_own_addresses(own: &OwnSockets) {
    let now = Instant::now();
    if own
        .addresses_set_at()
        .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
    {
        return;
    }
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => {
            let broadcasts = interfaces
                .iter()
                .filter_map(|i| match &i.addr {
                    if_addrs::IfAddr::V4(v4) => v4.broadcast,
                    if_addrs::IfAddr::V6(_) => None,
                })
                .collect();
            own.set_addresses(interfaces.iter().map(|i| i.ip()).collect(), broadcasts, now);
        }
        Err(e) => tracing::warn!("cannot list the interfaces' addresses: {e}"),
    }
}

/// Binds worker `index`'s shared sockets: its producer port, and in the shared layout its
/// media ports (IPv6 only where the host has it).
fn shared_sockets(config: &Config, index: usize) -> std::io::Result<SharedSockets> {
    let m = &config.media;
    // A shared port carries many calls' packets: its buffers are the shared ones.
    let options = MediaSocketOptions {
        dscp: m.dscp_audio,
        recv_buffer: m.shared_buffer_bytes,
        send_buffer: m.shared_buffer_bytes,
    };
    let plain = MediaSocketOptions { dscp: 0, ..options };
    let local = bind_udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), plain)?;
    let (mut media_v4, mut media_v6) = (None, None);
    if m.layout == Layout::Shared {
        let port = m.shared_port + index as u16;
        media_v4 = Some(
            bind_media(m.bind_v4, port, port..=port, options)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrInUse, e.to_string()))?,
        );
        media_v6 = match bind_media(m.bind_v6, port, port..=port, options) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("no IPv6 shared port: {e}");
                None
            }
        };
    }
    Ok(SharedSockets {
        media_v4,
        media_v6,
        local,
    })
}

/// Loads a clip (Ogg Opus or WAV) as packets of `codec` off the async runtime, or -32602
/// naming `field`.
async fn load_clip(
    path: &Path,
    field: &str,
    codec: CodecKind,
) -> Result<Arc<AudioClip>, DaemonError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || crate::media::file_clip::load(&owned, codec))
        .await
        .map_err(DaemonError::internal)?
        .map(Arc::new)
        .map_err(|e| DaemonError::invalid(field, e))
}

/// The clip a track's source plays, if it is silence or a file.
async fn source_clip(
    plan: Option<&TrackPlan>,
    name: &str,
) -> Result<Option<ClipSource>, DaemonError> {
    let Some(plan) = plan else { return Ok(None) };
    // Video clips are Opus as they always were: nothing is transcoded for them.
    let codec = plan.params.codec.unwrap_or(CodecKind::Opus);
    Ok(match &plan.source {
        SourcePlan::Silence => Some(ClipSource::silence(codec)),
        SourcePlan::File { path, looping } => Some(ClipSource::new(
            load_clip(path, &format!("{name}.source.path"), codec).await?,
            *looping,
        )),
        _ => None,
    })
}

/// How long a shutdown lets the control connections deliver the last events, at most.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
