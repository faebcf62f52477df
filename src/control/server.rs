//! The control socket: a Unix stream socket speaking newline-delimited JSON-RPC 2.0 to many
//! clients at once. It knows nothing of the daemon but the [`Service`] it serves.
//!
//! Every client is bounded: a cap on connections, a longest line and a time by which a begun
//! line must end, and a queue of lines to it bounded in bytes, in which events give way (the
//! subscriber is told how many it lost) while its responses wait for room.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};

use super::protocol::{
    INVALID_REQUEST, RequestId, RpcError, SERVER_BUSY, error_response, event_notification,
    parse_request, response, wipe_strings,
};
use crate::call::Event;
use crate::config::ControlConfig;

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
    /// Changes to `true` once the service has published its last events: connections then
    /// deliver what they have queued and close.
    fn finished(&self) -> watch::Receiver<bool>;
    /// How long the connections get to deliver their last lines once finished.
    fn closing_grace(&self) -> Duration;
    /// The limits on clients (`[control]`).
    fn limits(&self) -> &ControlConfig;
}

/// Lines a connection's queue holds at most, whatever their size.
const QUEUE_LINES: usize = 1024;

/// Binds the control socket at `path`, created with mode 0600 (0660 and the group's when
/// `group` is given) so that no one else can connect even for an instant.
///
/// The directory is created (0700) when missing; an existing one must be owned by us or root
/// and not writable by others unless it is sticky (as /tmp is), or it is refused: whoever
/// can write it could replace the socket. A stale socket file left by a dead daemon is
/// replaced; a live daemon on it is an error, and so is a non-socket file there.
pub fn bind_control_socket(path: &Path, group: Option<&str>) -> io::Result<UnixListener> {
    let gid = group.map(group_id).transpose()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(meta) => check_directory(dir, &meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            Err(e) => return Err(e),
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
    // SAFETY: umask only swaps the process's file-creation mask; it is restored at once.
    let previous = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
    let listener = bound?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    }
    Ok(listener)
}

/// Refuses a directory that someone but us (or root) could write a socket into.
fn check_directory(dir: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the control socket's directory {} {why}; refusing to use it (create it with mode 0700, or choose another --socket)",
                dir.display()
            ),
        ))
    };
    if !meta.is_dir() {
        return refuse("is not a directory".into());
    }
    if meta.uid() != me && meta.uid() != 0 {
        return refuse(format!("is owned by uid {}, not by us ({me})", meta.uid()));
    }
    if mode & 0o022 != 0 && !sticky {
        return refuse(format!(
            "has mode {:o}: others can write to it",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The id of a group given by name or number.
fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group name contains NUL"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: zeroed `group` is a valid out-parameter for getgrnam_r.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to live memory of the length given.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        let e = io::Error::from_raw_os_error(rc);
        return Err(io::Error::new(
            e.kind(),
            format!("control.socket_group: looking up {group:?}: {e}"),
        ));
    }
    if found.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("control.socket_group: no group {group:?}"),
        ));
    }
    Ok(entry.gr_gid)
}

/// Accepts control connections until shutdown is requested; returns once the service has
/// finished and every connection delivered its last lines (or the closing grace ran out).
pub async fn serve<S: Service>(service: Arc<S>, listener: UnixListener) {
    let mut shutdown = service.shutdown_requested();
    let max_connections = service.limits().max_connections;
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (uid, pid) = stream
                        .peer_cred()
                        .map_or((None, None), |c| (Some(c.uid()), c.pid()));
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            tracing::info!(?uid, ?pid, "control client connected");
                            let service = service.clone();
                            connections.spawn(async move {
                                connection(service, stream).await;
                                drop(slot);
                            });
                        }
                        Err(_) => {
                            tracing::warn!(?uid, ?pid, max_connections, "control client refused: too many connections");
                            refuse(&stream, max_connections);
                        }
                    }
                }
                Err(e) => tracing::warn!("control socket accept failed: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.wait_for(|&s| s) => break,
        }
    }
    drop(listener);
    let _ = service.finished().wait_for(|&f| f).await;
    let grace = service.closing_grace();
    let closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, closed).await.is_err() {
        tracing::warn!("control connections still writing after {grace:?}; closing them");
        connections.abort_all();
    }
}

/// Tells a client over the connection cap why it is closed, in one non-blocking write (a
/// fresh socket's buffer takes the line; a client that cannot take it gets only the close),
/// so that refused clients hold nothing and no task.
fn refuse(stream: &UnixStream, max: usize) {
    let e = RpcError::new(
        SERVER_BUSY,
        format!("too many control connections (control.max_connections = {max}); closing"),
    );
    let mut line = error_response(&RequestId::null(), &e);
    line.push('\n');
    let _ = stream.try_write(line.as_bytes());
}

/// The lines on their way to one client, bounded in bytes.
#[derive(Clone)]
struct Outbound {
    lines: mpsc::Sender<String>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// Why an event was not queued.
enum Refused {
    /// The client's queue is full: the event is lost to it.
    Full,
    /// The connection is gone.
    Closed,
}

impl Outbound {
    /// Queues a response, waiting for room: a client that does not read its answers stalls
    /// only itself.
    async fn reply(&self, line: String) -> bool {
        self.queued.fetch_add(line.len() + 1, Ordering::Relaxed);
        self.lines.send(line).await.is_ok()
    }

    /// Queues an event if its bytes fit.
    fn event(&self, line: String) -> Result<(), Refused> {
        let len = line.len() + 1;
        if self.queued.load(Ordering::Relaxed) + len > self.limit {
            return Err(Refused::Full);
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.lines.try_send(line).map_err(|e| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full,
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }
}

/// Writes a connection's queued lines.
async fn write_lines(
    mut write: OwnedWriteHalf,
    mut lines: mpsc::Receiver<String>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(mut line) = lines.recv().await {
        let len = line.len() + 1;
        line.push('\n');
        let written = write.write_all(line.as_bytes()).await;
        queued.fetch_sub(len, Ordering::Relaxed);
        if written.is_err() {
            break;
        }
    }
}

async fn connection<S: Service>(service: Arc<S>, stream: UnixStream) {
    let limits = service.limits().clone();
    let (read, write) = stream.into_split();
    let (lines, queue) = mpsc::channel::<String>(QUEUE_LINES);
    let out = Outbound {
        lines,
        queued: Arc::new(AtomicUsize::new(0)),
        limit: limits.queue_bytes,
    };
    let writer = tokio::spawn(write_lines(write, queue, out.queued.clone()));

    let max = limits.max_line_bytes;
    let line_timeout = Duration::from_millis(limits.line_timeout_ms);
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let mut forwarder = None;
    let mut finished = service.finished();
    loop {
        // A client may stay quiet as long as it likes; a line it begins must end in time.
        tokio::select! {
            ready = reader.fill_buf() => match ready {
                Ok([]) | Err(_) => break,
                Ok(_) => {}
            },
            _ = finished.wait_for(|&f| f) => break,
        }
        line.clear();
        let read = tokio::time::timeout(
            line_timeout,
            (&mut reader)
                .take(max as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await;
        let refusal = match read {
            Err(_) => Some(format!(
                "invalid request: line not ended within {} ms; closing the connection",
                limits.line_timeout_ms
            )),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) if n > max && line.last() != Some(&b'\n') => Some(format!(
                "invalid request: line longer than {max} bytes; closing the connection"
            )),
            Ok(Ok(_)) => None,
        };
        if let Some(message) = refusal {
            zeroize::Zeroize::zeroize(&mut line);
            let e = RpcError::new(INVALID_REQUEST, message);
            let _ = out.reply(error_response(&RequestId::null(), &e)).await;
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
                let _ = out.reply(error_response(&id, &e)).await;
                continue;
            }
        };
        let result = if request.method == "events.subscribe" {
            if let Some(field) = request.params.as_object().and_then(|p| p.keys().next()) {
                Err(RpcError::invalid_param(
                    field,
                    "unknown field; events.subscribe takes no parameters",
                ))
            } else {
                if forwarder.is_none() {
                    // Subscribed before the answer goes out: every event after it is
                    // delivered.
                    let events = service.subscribe();
                    let (flush, flushes) = mpsc::channel(1);
                    let task = tokio::spawn(forward_events(
                        events,
                        out.clone(),
                        service.finished(),
                        flushes,
                    ));
                    forwarder = Some((task, flush));
                }
                Ok(json!({"subscribed": true}))
            }
        } else {
            service.call(&request.method, &request.params).await
        };
        wipe_strings(&mut request.params);
        if let Err(e) = &result {
            tracing::debug!(method = ?request.method, code = e.code, "request failed: {}", e.message.escape_debug());
        }
        if let Some((_, flush)) = &forwarder {
            // The events the request caused (call.ended of call.terminate, say) were
            // published before it was answered: they are queued before its answer too.
            let (done, flushed) = oneshot::channel();
            if flush.send(done).await.is_ok() {
                let _ = flushed.await;
            }
        }
        if let Some(id) = &request.id {
            let reply = match result {
                Ok(v) => response(id, &v),
                Err(e) => error_response(id, &e),
            };
            if !out.reply(reply).await {
                break;
            }
        }
    }
    if let Some((f, _)) = forwarder {
        // On shutdown the last events (every call.ended) go out; a client that left gets none.
        if !*finished.borrow() {
            f.abort();
        }
        let _ = f.await;
    }
    drop(out);
    let _ = writer.await;
}

/// Sends a subscriber its events, serialized here at the edge. Events that do not fit its
/// queue are lost to it, and the next one that fits is preceded by `events.lost` with their
/// count. Each `flushes` request is answered once every event published before it is
/// queued. Once the service has `finished`, what is left is sent and the forwarding ends.
async fn forward_events(
    mut events: broadcast::Receiver<Event>,
    out: Outbound,
    mut finished: watch::Receiver<bool>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut lost: u64 = 0;
    loop {
        let next = tokio::select! {
            next = events.recv() => next,
            Some(done) = flushes.recv() => {
                if !forward_ready(&mut events, &out, &mut lost) {
                    return;
                }
                let _ = done.send(());
                continue;
            }
            _ = finished.wait_for(|&f| f) => {
                forward_ready(&mut events, &out, &mut lost);
                return;
            }
        };
        let event = match next {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                lost += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !forward(&event, &out, &mut lost) {
            return;
        }
    }
}

/// Queues every event already published; `false` once the connection is gone.
fn forward_ready(events: &mut broadcast::Receiver<Event>, out: &Outbound, lost: &mut u64) -> bool {
    loop {
        match events.try_recv() {
            Ok(event) => {
                if !forward(&event, out, lost) {
                    return false;
                }
            }
            Err(broadcast::error::TryRecvError::Lagged(n)) => *lost += n,
            Err(broadcast::error::TryRecvError::Empty) => return true,
            Err(broadcast::error::TryRecvError::Closed) => return false,
        }
    }
}

/// Queues one event, after the count of those lost before it if there were any (counted
/// into `lost` when it does not fit either); `false` once the connection is gone.
fn forward(event: &Event, out: &Outbound, lost: &mut u64) -> bool {
    if *lost > 0 {
        let notice = json!({"event": "events.lost", "count": *lost});
        match out.event(event_notification(&notice)) {
            Ok(()) => *lost = 0,
            Err(Refused::Full) => {
                *lost += 1;
                return true;
            }
            Err(Refused::Closed) => return false,
        }
    }
    let params = serde_json::to_value(event).unwrap_or(Value::Null);
    match out.event(event_notification(&params)) {
        Ok(()) => true,
        Err(Refused::Full) => {
            *lost += 1;
            true
        }
        Err(Refused::Closed) => false,
    }
}
