//! Dispatch: JSON-RPC requests → the daemon's typed operations → JSON-RPC results. The one
//! place that knows the protocol's method names and error codes.

use serde_json::{Value, json};

use super::params::{
    CallBridgeParams, CallIdParams, DtmfParams, MuteParams, NoParams, PeerStateParams, PlayParams,
    RecordParams, StanzaParams, StartParams, TerminateParams, VideoParams,
};
use super::protocol::{
    BAD_KEYING, CALL_EXISTS, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, NO_FREE_PORT,
    NO_SUCH_CALL, RpcError, TOO_MANY_CALLS, decode_params,
};
use crate::call::MediaKind;
use crate::daemon::{Daemon, DaemonError};

/// The methods [`handle`] answers, for `srtpctl` and error messages.
pub const METHODS: &[&str] = &[
    "call.start",
    "call.stanza",
    "call.mute",
    "call.dtmf",
    "call.bridge",
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

impl From<DaemonError> for RpcError {
    fn from(e: DaemonError) -> Self {
        let code = match &e {
            DaemonError::InvalidParam { .. } => INVALID_PARAMS,
            DaemonError::NoSuchCall(_) => NO_SUCH_CALL,
            DaemonError::CallExists(_) => CALL_EXISTS,
            DaemonError::TooManyCalls(_) => TOO_MANY_CALLS,
            DaemonError::NoFreePort(_) => NO_FREE_PORT,
            DaemonError::BadKeying(_) => BAD_KEYING,
            DaemonError::Internal(_) => INTERNAL_ERROR,
        };
        match e {
            DaemonError::InvalidParam { field, reason } => RpcError::invalid_param(&field, reason),
            other => RpcError::new(code, other.to_string()),
        }
    }
}

fn to_value(v: impl serde::Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(v)
        .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("internal error: {e}")))
}

/// Answers one request (`events.subscribe` is the connection's business: the server).
pub async fn handle(daemon: &Daemon, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "call.start" => {
            let p: StartParams = decode_params(params)?;
            to_value(daemon.start_call(p, false).await?)
        }
        "call.stanza" => {
            let p: StanzaParams = decode_params(params)?;
            Ok(daemon.stanza(p).await?)
        }
        "call.mute" => {
            let p: MuteParams = decode_params(params)?;
            daemon.mute(&p.call_id, p.media, p.muted).await?;
            Ok(json!({"call_id": p.call_id, "media": p.media, "muted": p.muted}))
        }
        "call.dtmf" => {
            let p: DtmfParams = decode_params(params)?;
            let events = crate::media::dtmf::parse_digits(&p.digits)
                .map_err(|e| RpcError::invalid_param("digits", e))?;
            let range = crate::media::dtmf::DURATION_MS;
            if !range.contains(&p.duration_ms) {
                return Err(RpcError::invalid_param(
                    "duration_ms",
                    format!("{} to {} ms", range.start(), range.end()),
                ));
            }
            daemon.dtmf(&p.call_id, events, p.duration_ms).await?;
            Ok(json!({"call_id": p.call_id, "digits": p.digits, "duration_ms": p.duration_ms}))
        }
        "call.bridge" => {
            let p: CallBridgeParams = decode_params(params)?;
            let call_id = p.call_id.clone();
            let attached = p.bridge.url.is_some();
            daemon.bridge(p).await?;
            Ok(json!({"call_id": call_id, "bridged": attached}))
        }
        "call.video" => {
            let p: VideoParams = decode_params(params)?;
            daemon
                .mute(&p.call_id, MediaKind::Video, !p.enabled)
                .await?;
            Ok(json!({"call_id": p.call_id, "enabled": p.enabled}))
        }
        "call.play" => {
            let p: PlayParams = decode_params(params)?;
            let playing = daemon.play(&p.call_id, p.media, &p.path, p.looping).await?;
            Ok(json!({
                "call_id": p.call_id, "media": p.media, "packets": playing.packets,
                "duration_ms": playing.duration_ms, "loop": p.looping,
            }))
        }
        "call.record" => {
            let p: RecordParams = decode_params(params)?;
            daemon
                .record(&p.call_id, p.media, p.path.as_deref(), p.overwrite)
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
            let held = (p.muted.is_some() || p.hold.is_some())
                .then(|| p.muted.unwrap_or(false) || p.hold.unwrap_or(false));
            let stats = daemon.set_peer_state(&p.call_id, held, p.video).await?;
            Ok(
                json!({"call_id": p.call_id, "peer_muted": stats.peer_muted, "peer_video": stats.peer_video}),
            )
        }
        "call.stats" => {
            let p: CallIdParams = decode_params(params)?;
            to_value(daemon.stats(&p.call_id).await?)
        }
        "call.list" => {
            decode_params::<NoParams>(params)?;
            to_value(daemon.list().await)
        }
        "call.terminate" => {
            let p: TerminateParams = decode_params(params)?;
            let reason = p.reason.unwrap_or_else(|| "terminated".to_owned());
            crate::call::check_text(&reason, crate::call::MAX_REASON_BYTES)
                .map_err(|e| RpcError::invalid_param("reason", e))?;
            to_value(daemon.terminate(&p.call_id, reason).await?)
        }
        "daemon.status" => {
            decode_params::<NoParams>(params)?;
            to_value(daemon.status())
        }
        "daemon.shutdown" => {
            decode_params::<NoParams>(params)?;
            daemon.request_shutdown();
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

impl super::server::Service for Daemon {
    async fn call(&self, method: &str, params: &Value) -> Result<Value, RpcError> {
        let result = handle(self, method, params).await;
        self.metrics()
            .request(method, result.as_ref().map(|_| ()).map_err(|e| e.code));
        result
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::call::Event> {
        Daemon::subscribe(self)
    }

    fn shutdown_requested(&self) -> tokio::sync::watch::Receiver<bool> {
        Daemon::shutdown_requested(self)
    }

    fn finished(&self) -> tokio::sync::watch::Receiver<bool> {
        Daemon::finished(self)
    }

    fn closing_grace(&self) -> std::time::Duration {
        crate::daemon::SHUTDOWN_GRACE
    }

    fn limits(&self) -> &crate::config::ControlConfig {
        &self.config().control
    }
}
