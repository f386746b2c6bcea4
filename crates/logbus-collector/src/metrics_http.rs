//! The metrics endpoint's HTTP server: `GET /metrics` answered with
//! [`Registry::prometheus`] (`metrics.rs`), over HTTP/1.1 by hyper on a small
//! tokio runtime of its own.
//!
//! hyper (already in the tree through the OTLP exporter) does the protocol;
//! this module bounds what clients can hold: at most [`MAX_CONNECTIONS`]
//! connections at once (more are closed on accept), a request's headers must
//! arrive within [`HEADER_TIMEOUT`], and no connection lives longer than
//! [`CONNECTION_TIMEOUT`]. Idle clients therefore cost a task each, never the
//! answer to the next one.
//!
//! Its public items are re-exported by [`crate::metrics`], their path for
//! callers.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use logbus_ring::Ring;

use crate::stats::Registry;

/// Connections served at once; further ones are closed as soon as accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// Longest wait for a request's headers (slowloris, idle keep-alive).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

fn respond(
    req: &Request<Incoming>,
    registry: &Registry,
    rings: &[Ring],
    labelled: bool,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let (status, ctype, body) = match (req.method(), path) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            registry.prometheus(rings, labelled),
        ),
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics\n".to_string(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The rings a collector reads (see `Collector::rings`).
pub type Rings = Arc<Mutex<Vec<Ring>>>;

/// What the endpoint reports: the current collector's registry and rings,
/// replaced when the collector follows a new ring file.
pub struct Source {
    current: Mutex<(Arc<Registry>, Rings)>,
    /// Label each ring's series with `ring` (its path) and `uid` (its owner):
    /// a collector of a ring directory.
    labelled: bool,
}

impl Source {
    /// Reports `registry` and `rings`; `labelled` for a ring directory.
    pub fn new(registry: Arc<Registry>, rings: Rings, labelled: bool) -> Source {
        Source {
            current: Mutex::new((registry, rings)),
            labelled,
        }
    }

    /// Reports `registry` and `rings` from now on.
    pub fn set(&self, registry: Arc<Registry>, rings: Rings) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = (registry, rings);
    }

    fn get(&self) -> (Arc<Registry>, Vec<Ring>) {
        let (registry, rings) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rings = rings.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (registry, rings)
    }
}

/// Serves `GET /metrics` (Prometheus text) on `listener` until the process
/// exits. Other paths get 404, other methods 405.
///
/// # Errors
/// When the runtime cannot be built or the listener cannot be registered.
pub fn serve_metrics(listener: TcpListener, source: Arc<Source>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // EMFILE and the like: do not spin on them.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (registry, rings) = source.get();
                    let resp = respond(&req, &registry, &rings, source.labelled);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                drop(permit);
            });
        }
    })
}
