//! The metrics endpoint: HTTP/1.1 `GET /metrics` (hyper) on the control runtime, serving
//! [`Daemon::metrics_text`]. Bounded like everything reachable from outside: a cap on
//! connections, a time by which a request's head must arrive, one request per connection
//! (no keep-alive, so idle connections cannot hold the slots), and a time by which a
//! connection is done.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Daemon;
use super::metrics::CONTENT_TYPE as METRICS_TYPE;

/// Scrapers served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// How long a request's head may take to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may last, a slow reader of the answer included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `/metrics` on `listener` until the daemon shuts down.
pub async fn serve_metrics(daemon: Arc<Daemon>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut requested = daemon.shutdown_requested();
    let shutdown = async move {
        let _ = requested.wait_for(|&s| s).await;
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => return,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(daemon.clone(), req));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("metrics endpoint: connection ended: {e}"),
                Err(_) => tracing::debug!(
                    "metrics endpoint: connection closed after {CONNECTION_TIMEOUT:?}"
                ),
            }
            drop(permit);
        });
    }
}

async fn answer(
    daemon: Arc<Daemon>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, "srtpd serves /metrics only\n"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        r.headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let text = daemon.metrics_text().await;
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(METRICS_TYPE),
    );
    Ok(r)
}
