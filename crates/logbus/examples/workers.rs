//! A demo: N worker processes logging through `logbus::init()`.
//!
//! ```text
//! cargo run -p logbus --example workers -- [N] [--rate R] [--duration S]
//! ```
//!
//! Starts N workers (default 3) that each handle fake requests: every request
//! gets a random OpenTelemetry trace id, a `request` span with fields, a few
//! records at various levels (some WARN and ERROR) and a `log` crate record,
//! at about R records per second per worker (default 2), for S seconds
//! (default: until Ctrl-C). The ring is `LOGBUS_RING` (default `/dev/shm/logbus`);
//! watch it with the `logbus` CLI or the collector.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};

const WORKER_ENV: &str = "LOGBUS_DEMO_WORKER";

/// Set by the signal handler. Relaxed everywhere: it publishes no other data,
/// and a loop that sees it one iteration late is fine.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Relaxed: a flag polled by the main loop; nothing else is published with it.
    STOP.store(true, Ordering::Relaxed);
}

struct Args {
    workers: u32,
    rate: f64,
    duration: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        workers: 3,
        rate: 2.0,
        duration: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rate" => {
                args.rate = value("--rate")?
                    .parse()
                    .map_err(|e| format!("--rate: {e}"))?;
                if args.rate.is_nan() || args.rate <= 0.0 {
                    return Err("--rate must be positive".into());
                }
            }
            "--duration" => {
                let s: f64 = value("--duration")?
                    .parse()
                    .map_err(|e| format!("--duration: {e}"))?;
                args.duration = Some(Duration::from_secs_f64(s.max(0.0)));
            }
            "-h" | "--help" => {
                return Err("usage: workers [N] [--rate R] [--duration S]".into());
            }
            n => {
                args.workers = n
                    .parse()
                    .map_err(|_| format!("unexpected argument {n:?}"))?
            }
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("workers: {e}");
            std::process::exit(2);
        }
    };
    // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let result = match std::env::var(WORKER_ENV) {
        Ok(id) => worker(id.parse().unwrap_or(0), &args),
        Err(_) => supervise(&args),
    };
    if let Err(e) = result {
        eprintln!("workers: {e}");
        std::process::exit(1);
    }
}

/// Starts the workers (this program again) and waits for them.
fn supervise(args: &Args) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let ring = logbus_ring::ring_path(None);
    let mut children: Vec<Child> = Vec::new();
    for id in 0..args.workers {
        let child = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env(WORKER_ENV, id.to_string())
            .spawn()
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
        children.push(child);
    }
    eprintln!(
        "workers: {} workers writing about {} records/s each to {}{}",
        args.workers,
        args.rate,
        ring.display(),
        match args.duration {
            Some(d) => format!(" for {:.0} s", d.as_secs_f64()),
            None => "; Ctrl-C to stop".into(),
        }
    );
    let mut failed = 0;
    for mut c in children {
        loop {
            // Workers stop by themselves (duration, or the same Ctrl-C as ours).
            match c.try_wait() {
                Ok(Some(status)) => {
                    failed += u32::from(!status.success());
                    break;
                }
                Ok(None) if STOP.load(Ordering::Relaxed) => {
                    // Ctrl-C reached us; make sure it reached them too.
                    // SAFETY: plain kill(2) on our own child.
                    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
                    let status = c.wait().map_err(|e| e.to_string())?;
                    failed += u32::from(!status.success());
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("cannot wait for a worker: {e}")),
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} workers failed"));
    }
    Ok(())
}

/// A small xorshift generator: the demo needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ROUTES: [&str; 5] = ["/cart", "/checkout", "/pay", "/search", "/login"];
const USERS: [&str; 6] = ["ada", "grace", "alan", "edsger", "barbara", "ken"];

fn worker(id: u32, args: &Args) -> Result<(), String> {
    logbus::Builder::new()
        .service_name("demo-worker")
        .service_version(env!("CARGO_PKG_VERSION"))
        .init()
        .map_err(|e| e.to_string())?;
    let mut rng = Rng(logbus_ring::now_ns() ^ (u64::from(std::process::id()) << 32) | 1);
    let start = Instant::now();
    // About 3 records a request.
    let pause = Duration::from_secs_f64(3.0 / args.rate);
    tracing::info!(worker = id, "worker started");
    let mut request_id: u64 = 0;
    while !STOP.load(Ordering::Relaxed) && args.duration.is_none_or(|d| start.elapsed() < d) {
        request_id += 1;
        handle_request(id, request_id, &mut rng);
        // Sleep in small steps so that Ctrl-C is handled promptly.
        let until = Instant::now() + pause.mul_f64(0.5 + rng.below(100) as f64 / 100.0);
        while Instant::now() < until && !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
    }
    tracing::info!(worker = id, requests = request_id, "worker stopping");
    Ok(())
}

fn handle_request(worker: u32, request_id: u64, rng: &mut Rng) {
    // A new trace per request, as if it came in with a traceparent header.
    let sc = SpanContext::new(
        u128::from(rng.next())
            .wrapping_shl(64)
            .wrapping_add(u128::from(rng.next()))
            .into(),
        rng.next().max(1).into(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _cx = opentelemetry::Context::new()
        .with_remote_span_context(sc)
        .attach();
    let route = ROUTES[rng.below(ROUTES.len() as u64) as usize];
    let user = USERS[rng.below(USERS.len() as u64) as usize];
    let span = tracing::info_span!("request", worker, request_id, route, user);
    let _g = span.enter();
    tracing::info!(method = "POST", "request received");
    let latency_ms = 5 + rng.below(60) + if rng.below(10) == 0 { 400 } else { 0 };
    log::debug!(target: "demo::cache", hit = rng.below(2) == 0; "cache lookup");
    match rng.below(20) {
        0 => tracing::error!(
            latency_ms,
            error = "connection reset by peer",
            "payment provider failed"
        ),
        1..=2 => tracing::warn!(latency_ms, retries = 1 + rng.below(3), "slow downstream"),
        _ if latency_ms > 300 => tracing::warn!(latency_ms, "request over budget"),
        _ => {}
    }
    let status = if latency_ms > 400 { 503u64 } else { 200 };
    tracing::info!(
        status,
        latency_ms,
        bytes = 200 + rng.below(5000),
        "request done"
    );
}
