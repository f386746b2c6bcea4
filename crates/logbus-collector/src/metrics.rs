//! The metrics endpoint: the sinks' and the ring's counters as Prometheus
//! text, served over HTTP/1.1 by hyper on a small tokio runtime of its own.
//!
//! hyper (already in the tree through the OTLP exporter) does the protocol;
//! this module bounds what clients can hold: at most [`MAX_CONNECTIONS`]
//! connections at once (more are closed on accept), a request's headers must
//! arrive within [`HEADER_TIMEOUT`], and no connection lives longer than
//! [`CONNECTION_TIMEOUT`]. Idle clients therefore cost a task each, never the
//! answer to the next one.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use logbus_ring::{Level, Ring};

use crate::stats::{Registry, SinkStats};

/// Connections served at once; further ones are closed as soon as accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// Longest wait for a request's headers (slowloris, idle keep-alive).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

impl Registry {
    /// Prometheus text exposition of the sinks' and the rings' counters; with
    /// `labelled`, each ring's series carry `ring` (its path) and `uid` (its
    /// owner) labels.
    pub fn prometheus(&self, rings: &[Ring], labelled: bool) -> String {
        use std::fmt::Write as _;
        let mut o = String::with_capacity(4096);
        let sinks = self.sinks();
        let label = |s: &SinkStats| {
            format!(
                "sink=\"{}\",type=\"{}\"",
                s.name.replace('\\', "\\\\").replace('"', "\\\""),
                s.kind
            )
        };
        let _ = writeln!(
            o,
            "# HELP logbus_sink_delivered_total Records a sink finished writing."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_delivered_total counter");
        for s in &sinks {
            // Relaxed loads: statistics.
            let _ = writeln!(
                o,
                "logbus_sink_delivered_total{{{}}} {}",
                label(s),
                s.delivered.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_dropped_total Records a sink shed (its memory bound reached)."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_dropped_total counter");
        for s in &sinks {
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_sink_dropped_total{{{},level=\"{}\"}} {}",
                    label(s),
                    level.name(),
                    s.dropped[l].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_rejected_total Records a sink's destination refused for good."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_rejected_total counter");
        for s in &sinks {
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_sink_rejected_total{{{},level=\"{}\"}} {}",
                    label(s),
                    level.name(),
                    s.rejected[l].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_partially_rejected_total Records an endpoint took but rejected (OTLP partial success)."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_partially_rejected_total counter");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_partially_rejected_total{{{}}} {}",
                label(s),
                s.partially_rejected.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_retries_total Writes tried again after a failure."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_retries_total counter");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_retries_total{{{}}} {}",
                label(s),
                s.retries.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_up Whether the sink is writing: its last write succeeded and none has been blocked for 2 s."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_up gauge");
        for s in &sinks {
            let _ = writeln!(o, "logbus_sink_up{{{}}} {}", label(s), s.is_up() as u8);
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_backlog Records a sink has not finished (queued or in flight)."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_backlog gauge");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_backlog{{{}}} {}",
                label(s),
                s.depth.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(o, "# HELP logbus_sink_errors_total Failed write attempts.");
        let _ = writeln!(o, "# TYPE logbus_sink_errors_total counter");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_errors_total{{{}}} {}",
                label(s),
                s.errors.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_queue_depth Records queued or in flight."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_queue_depth gauge");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_queue_depth{{{}}} {}",
                label(s),
                s.depth.load(Ordering::Relaxed)
            );
        }
        let stats: Vec<(String, logbus_ring::Stats)> = rings
            .iter()
            .map(|r| {
                let l = if labelled {
                    format!(
                        "ring=\"{}\",uid=\"{}\"",
                        escape_label(&r.path().display().to_string()),
                        r.owner()
                    )
                } else {
                    String::new()
                };
                (l, r.stats())
            })
            .collect();
        // `{level="INFO",ring="...",uid="..."}`, or without the ring's labels.
        let with = |ring: &str, level: Option<Level>| {
            let mut parts: Vec<String> = Vec::new();
            if let Some(l) = level {
                parts.push(format!("level=\"{}\"", l.name()));
            }
            if !ring.is_empty() {
                parts.push(ring.to_string());
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", parts.join(","))
            }
        };
        let counters: [(&str, &str, CountOf); 6] = [
            ("emitted", "Records producers emitted.", |c| c.emitted),
            ("published", "Records written into the ring.", |c| {
                c.published
            }),
            (
                "dropped",
                "Records the ring's overflow policy refused.",
                |c| c.dropped,
            ),
            ("evicted", "Records pushed out by protected records.", |c| {
                c.evicted
            }),
            (
                "torn",
                "Records whose producer died while writing them.",
                |c| c.torn,
            ),
            ("delivered", "Records the collector committed.", |c| {
                c.delivered
            }),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(o, "# HELP logbus_ring_{name}_total {help}");
            let _ = writeln!(o, "# TYPE logbus_ring_{name}_total counter");
            for (ring, st) in &stats {
                for (l, level) in Level::ALL.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "logbus_ring_{name}_total{} {}",
                        with(ring, Some(*level)),
                        get(&st.levels[l])
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_unread Records in the ring not yet committed."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_unread gauge");
        for (ring, st) in &stats {
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_ring_unread{} {}",
                    with(ring, Some(*level)),
                    st.levels[l].unread
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_invalid_total Garbage records skipped."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_invalid_total counter");
        for (ring, st) in &stats {
            let _ = writeln!(
                o,
                "logbus_ring_invalid_total{} {}",
                with(ring, None),
                st.invalid
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_blocks_in_use Blocks claimed by producers and not yet freed."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_blocks_in_use gauge");
        for (ring, st) in &stats {
            let _ = writeln!(
                o,
                "logbus_ring_blocks_in_use{} {}",
                with(ring, None),
                st.blocks_in_use
            );
        }
        o
    }
}

type CountOf = fn(&logbus_ring::LevelCounts) -> u64;

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

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
