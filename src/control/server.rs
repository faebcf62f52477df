//! The control socket: a Unix stream socket speaking newline-delimited JSON-RPC 2.0 to many
//! clients at once. It knows nothing of the daemon but the [`Service`] it serves.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch};

use super::protocol::{
    INVALID_REQUEST, RpcError, error_response, event_notification, parse_request, response,
    wipe_strings,
};
use crate::call::Event;

/// What the control socket serves: requests answered, events to subscribers, and when to
/// stop.
pub trait Service: Send + Sync + 'static {
    /// Answers one request (any method but `events.subscribe`, which the server handles).
    fn call(
        &self,
        method: &str,
        params: &Value,
    ) -> impl std::future::Future<Output = Result<Value, RpcError>> + Send;
    /// A new subscription to events.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// Changes to `true` when the server is to stop accepting.
    fn shutdown_requested(&self) -> watch::Receiver<bool>;
    /// The longest request line a client may send.
    fn max_line_bytes(&self) -> usize;
}

/// Binds the control socket at `path` with mode 0600. A stale socket file left by a dead
/// daemon is replaced; a live daemon on it is an error, and so is a non-socket file there.
pub fn bind_control_socket(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("another srtpd is already listening on {}", path.display()),
                    ));
                }
                Err(_) => std::fs::remove_file(path)?,
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not replacing it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts control connections until shutdown is requested.
pub async fn serve<S: Service>(service: Arc<S>, listener: UnixListener) {
    let mut shutdown = service.shutdown_requested();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(service.clone(), stream));
                }
                Err(e) => tracing::warn!("control socket accept failed: {e}"),
            },
            _ = shutdown.wait_for(|&s| s) => return,
        }
    }
}

async fn connection<S: Service>(service: Arc<S>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let (out, mut lines) = mpsc::channel::<Value>(256);
    let writer = tokio::spawn(async move {
        while let Some(value) = lines.recv().await {
            let mut text = value.to_string();
            text.push('\n');
            if write.write_all(text.as_bytes()).await.is_err() {
                break;
            }
        }
    });

    let max = service.max_line_bytes();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let mut forwarder = None;
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if n > max && line.last() != Some(&b'\n') {
            let e = RpcError::new(
                INVALID_REQUEST,
                format!("invalid request: line longer than {max} bytes; closing the connection"),
            );
            zeroize::Zeroize::zeroize(&mut line);
            let _ = out.send(error_response(&Value::Null, &e)).await;
            break;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let parsed = parse_request(text);
        // The line may carry key material: wipe it as soon as it is parsed.
        zeroize::Zeroize::zeroize(&mut line);
        let mut request = match parsed {
            Ok(r) => r,
            Err((id, e)) => {
                let _ = out.send(error_response(&id, &e)).await;
                continue;
            }
        };
        let result = if request.method == "events.subscribe" {
            if forwarder.is_none() {
                // Subscribed before the answer goes out: every event after it is delivered.
                let events = service.subscribe();
                forwarder = Some(tokio::spawn(forward_events(events, out.clone())));
            }
            Ok(json!({"subscribed": true}))
        } else {
            service.call(&request.method, &request.params).await
        };
        wipe_strings(&mut request.params);
        if let Err(e) = &result {
            tracing::debug!(method = %request.method, code = e.code, "request failed: {}", e.message);
        }
        if let Some(id) = &request.id {
            let reply = match result {
                Ok(v) => response(id, v),
                Err(e) => error_response(id, &e),
            };
            if out.send(reply).await.is_err() {
                break;
            }
        }
    }
    if let Some(f) = forwarder {
        f.abort();
        let _ = f.await;
    }
    drop(out);
    let _ = writer.await;
}

/// Sends a subscriber its events, serialized here at the edge.
async fn forward_events(mut events: broadcast::Receiver<Event>, out: mpsc::Sender<Value>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                let params = serde_json::to_value(&event).unwrap_or(Value::Null);
                if out.send(event_notification(params)).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                let lost = json!({"event": "events.lost", "count": n});
                if out.send(event_notification(lost)).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
