//! Real programs calling `logbus::init()` (this binary, re-executed as a child
//! process), read back from the ring.

mod common;

use std::sync::{Arc, Barrier};

use common::{drain, hex, reported, run_child, TempDir, V};

fn role() -> Option<String> {
    common::child_role()
}

#[test]
fn fields_and_types() {
    if role().as_deref() == Some("fields") {
        logbus::init().unwrap();
        let span = tracing::info_span!("request", user = "ada", request_id = 7u64, count = 99i64);
        let _g = span.enter();
        let inner = tracing::info_span!("step", step = "load");
        let _i = inner.enter();
        tracing::info!(
            count = -3i64,
            ratio = 0.5,
            ok = true,
            big = u64::MAX,
            name = "widget",
            list = ?vec![1, 2],
            "hello {}",
            "world"
        );
        return;
    }
    let dir = TempDir::new("fields");
    let (pid, _) = run_child("fields_and_types", "fields", &dir.ring(), &[]);
    let recs = drain(&dir.ring());
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r.message, "hello world");
    assert_eq!(r.target, "producer");
    assert_eq!(r.severity, 9);
    assert_eq!(r.pid, pid);
    assert_ne!(r.tid, 0);
    assert!(r.time_ns > 0);
    assert_eq!(r.field("message"), None, "the message is not a field");
    assert_eq!(
        r.field("count"),
        Some(&V::I64(-3)),
        "the event's field wins over the span's"
    );
    assert_eq!(r.field("ratio"), Some(&V::F64(0.5)));
    assert_eq!(r.field("ok"), Some(&V::Bool(true)));
    assert_eq!(r.field("big"), Some(&V::U64(u64::MAX)));
    assert_eq!(r.field("name"), Some(&V::Str("widget".into())));
    assert_eq!(r.field("list"), Some(&V::Str("[1, 2]".into())));
    assert_eq!(r.field("step"), Some(&V::Str("load".into())));
    assert_eq!(r.field("user"), Some(&V::Str("ada".into())));
    assert_eq!(r.field("request_id"), Some(&V::U64(7)));
    assert_eq!(r.fields.len(), 9, "{:?}", r.fields);
    assert_eq!((r.trace_id, r.span_id), (None, None), "no context, no ids");
}

#[test]
fn log_bridge_and_logger() {
    match role().as_deref() {
        Some("bridge") => {
            logbus::init().unwrap();
            let _s = tracing::info_span!("job", job = "nightly").entered();
            log::info!(target: "app::db", rows = 3, table = "users", fast = true; "query {}", "done");
            log::debug!(target: "app::db", "filtered out at the default level");
            return;
        }
        Some("logger") => {
            logbus::Builder::new()
                .filter("warn,app=debug")
                .logger()
                .unwrap()
                .install()
                .unwrap();
            log::debug!(target: "app::cache", size = 12.5; "evicted");
            log::info!(target: "other", "filtered out");
            log::error!(target: "other", code = -2; "failed");
            return;
        }
        _ => {}
    }
    let dir = TempDir::new("bridge");
    run_child("log_bridge_and_logger", "bridge", &dir.ring(), &[]);
    let recs = drain(&dir.ring());
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(
        (r.target.as_str(), r.message.as_str()),
        ("app::db", "query done")
    );
    assert_eq!(r.severity, 9);
    assert!(
        matches!(r.field("rows"), Some(V::I64(3) | V::U64(3))),
        "{r:?}"
    );
    assert_eq!(r.field("table"), Some(&V::Str("users".into())));
    assert_eq!(r.field("fast"), Some(&V::Bool(true)));
    assert_eq!(
        r.field("job"),
        Some(&V::Str("nightly".into())),
        "span fields apply to log records"
    );
    assert!(
        !r.fields.iter().any(|(k, _)| k.starts_with("log.")),
        "{r:?}"
    );

    let dir = TempDir::new("logger");
    run_child("log_bridge_and_logger", "logger", &dir.ring(), &[]);
    let recs = drain(&dir.ring());
    let got: Vec<_> = recs
        .iter()
        .map(|r| (r.severity, r.target.as_str(), r.message.as_str()))
        .collect();
    assert_eq!(got, [(5, "app::cache", "evicted"), (17, "other", "failed")]);
    assert_eq!(recs[0].field("size"), Some(&V::F64(12.5)));
    assert!(
        matches!(recs[1].field("code"), Some(V::I64(-2))),
        "{:?}",
        recs[1]
    );
}

#[test]
fn level_filter_from_env() {
    if role().as_deref() == Some("levels") {
        logbus::init().unwrap();
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
        tracing::trace!(target: "lvl::chatty", "chatty trace");
        log::info!("log info");
        log::warn!("log warn");
        return;
    }
    let dir = TempDir::new("levels");
    run_child(
        "level_filter_from_env",
        "levels",
        &dir.ring(),
        &[("LOGBUS_LEVEL", "warn,lvl::chatty=trace")],
    );
    let got: Vec<_> = drain(&dir.ring())
        .into_iter()
        .map(|r| (r.severity, r.message))
        .collect();
    let want = [(13, "w"), (17, "e"), (1, "chatty trace"), (13, "log warn")];
    assert_eq!(got, want.map(|(s, m)| (s, m.to_string())));
}

#[test]
fn bad_filter_is_an_error_not_a_panic() {
    if role().as_deref() == Some("badfilter") {
        match logbus::init() {
            Err(e @ logbus::Error::Filter { .. }) => println!("ERROR={e}"),
            other => panic!("expected a filter error, got {other:?}"),
        }
        let missing = logbus::Builder::new()
            .ring_path("/nonexistent-dir/ring")
            .filter("info")
            .init();
        match missing {
            Err(e @ logbus::Error::Open(_)) => println!("OPEN={e}"),
            other => panic!("expected an open error, got {other:?}"),
        }
        return;
    }
    let dir = TempDir::new("badfilter");
    let (_, out) = run_child(
        "bad_filter_is_an_error_not_a_panic",
        "badfilter",
        &dir.ring(),
        &[("LOGBUS_LEVEL", "info,=nonsense=")],
    );
    assert!(reported(&out, "ERROR").contains("bad level filter"));
    assert!(reported(&out, "OPEN").contains("/nonexistent-dir/ring"));
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn ids(r: &common::Rec) -> (Option<String>, Option<String>) {
    (r.trace_id.map(|t| hex(&t)), r.span_id.map(|s| hex(&s)))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[cfg(feature = "otel")]
#[test]
fn trace_ids_from_the_opentelemetry_context() {
    if role().as_deref() == Some("otel-context") {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        logbus::init().unwrap();
        tracing::info!("before");
        let sc = SpanContext::new(
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let guard = opentelemetry::Context::current()
            .with_remote_span_context(sc)
            .attach();
        tracing::info!("inside");
        log::info!("log inside");
        drop(guard);
        tracing::info!("after");
        return;
    }
    let dir = TempDir::new("otel-context");
    run_child(
        "trace_ids_from_the_opentelemetry_context",
        "otel-context",
        &dir.ring(),
        &[],
    );
    let got: Vec<_> = drain(&dir.ring())
        .iter()
        .map(|r| (r.message.clone(), ids(r), r.trace_flags))
        .collect();
    let with = (some(TRACE), some(SPAN));
    assert_eq!(
        got,
        [
            ("before".to_string(), (None, None), 0),
            ("inside".to_string(), with.clone(), 1),
            ("log inside".to_string(), with, 1),
            ("after".to_string(), (None, None), 0),
        ]
    );
}

#[cfg(feature = "otel")]
#[test]
fn trace_ids_from_tracing_opentelemetry_spans() {
    if role().as_deref() == Some("otel-layer") {
        use opentelemetry::trace::{TraceContextExt, TracerProvider};
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        use tracing_subscriber::prelude::*;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry()
            .with(otel)
            .with(logbus::layer().unwrap());
        tracing::subscriber::set_global_default(subscriber).unwrap();
        let span = tracing::info_span!("request");
        span.in_scope(|| tracing::info!("in otel span"));
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        println!("TRACE={}", sc.trace_id());
        println!("SPAN={}", sc.span_id());
        return;
    }
    let dir = TempDir::new("otel-layer");
    let (_, out) = run_child(
        "trace_ids_from_tracing_opentelemetry_spans",
        "otel-layer",
        &dir.ring(),
        &[],
    );
    let recs = drain(&dir.ring());
    assert_eq!(recs.len(), 1);
    assert_eq!(
        ids(&recs[0]),
        (
            some(&reported(&out, "TRACE")),
            some(&reported(&out, "SPAN"))
        )
    );
    assert_eq!(recs[0].trace_flags, 1, "the SDK samples by default");
}

#[test]
fn trace_ids_from_span_fields() {
    if role().as_deref() == Some("span-fields") {
        logbus::init().unwrap();
        let tp = format!("00-{TRACE}-{SPAN}-01");
        tracing::info_span!("a", traceparent = %tp).in_scope(|| tracing::info!("traceparent"));
        tracing::info_span!("b", trace_id = TRACE, span_id = SPAN, user = "x")
            .in_scope(|| tracing::info!("ids"));
        tracing::info_span!("c", trace_id = "not hex").in_scope(|| tracing::info!("bad"));
        return;
    }
    let dir = TempDir::new("span-fields");
    run_child(
        "trace_ids_from_span_fields",
        "span-fields",
        &dir.ring(),
        &[],
    );
    let recs = drain(&dir.ring());
    assert_eq!(recs.len(), 3);
    for r in &recs[..2] {
        assert_eq!(ids(r), (some(TRACE), some(SPAN)), "{r:?}");
        assert!(r.field("trace_id").is_none() && r.field("traceparent").is_none());
    }
    assert_eq!(recs[0].trace_flags, 1);
    assert_eq!(recs[1].field("user"), Some(&V::Str("x".into())));
    assert_eq!(ids(&recs[2]), (None, None));
}

#[test]
fn resource_names_the_process() {
    if role().as_deref() == Some("resource") {
        logbus::init().unwrap();
        tracing::info!("hello");
        return;
    }
    let dir = TempDir::new("resource");
    let (pid, _) = run_child(
        "resource_names_the_process",
        "resource",
        &dir.ring(),
        &[("OTEL_SERVICE_NAME", "checkout")],
    );
    let recs = drain(&dir.ring());
    let res = recs[0]
        .resource
        .clone()
        .expect("record resolves to a resource");
    assert_eq!(res.pid, pid);
    assert_eq!(res.service, "checkout");
    assert_eq!(res.version, "");
    let mut host = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed.
    assert_eq!(
        unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) },
        0
    );
    let end = host.iter().position(|&b| b == 0).unwrap();
    assert_eq!(res.host.as_bytes(), &host[..end]);
    assert!(
        res.command.contains("resource_names_the_process"),
        "{res:?}"
    );

    // Default service name: the executable's.
    let dir = TempDir::new("resource-default");
    run_child("resource_names_the_process", "resource", &dir.ring(), &[]);
    let recs = drain(&dir.ring());
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(recs[0].resource.as_ref().unwrap().service, name);
}

#[test]
fn forked_child_writes_with_its_own_pid() {
    if role().as_deref() == Some("fork") {
        logbus::init().unwrap();
        tracing::info!("before fork");
        // SAFETY: the child only logs (no locks are held across fork by this
        // thread) and leaves with _exit.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            tracing::info!("in child");
            log::warn!("child log");
            // SAFETY: ends the child without running the test harness's exit path.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        tracing::info!("after fork");
        println!("CHILD={child}");
        return;
    }
    let dir = TempDir::new("fork");
    let (pid, out) = run_child(
        "forked_child_writes_with_its_own_pid",
        "fork",
        &dir.ring(),
        &[],
    );
    let child: u32 = reported(&out, "CHILD").parse().unwrap();
    let recs = drain(&dir.ring());
    let got: Vec<_> = recs.iter().map(|r| (r.message.as_str(), r.pid)).collect();
    assert_eq!(
        got,
        [
            ("before fork", pid),
            ("in child", child),
            ("child log", child),
            ("after fork", pid)
        ]
    );
    assert_eq!(recs[1].tid, child, "the child's thread id is its pid");
    let res = recs[1]
        .resource
        .as_ref()
        .expect("the child registered its resource");
    assert_eq!(res.pid, child);
    assert_eq!(recs[0].resource.as_ref().unwrap().pid, pid);
}

const THREADS: usize = 8;
const PER_THREAD: usize = 400;
const TASKS: usize = 64;
// Few enough task records that the default ring holds them all below INFO's
// fill limit even if one worker thread runs them all: nobody consumes meanwhile.
const PER_TASK: usize = 20;

#[test]
fn many_threads_and_tokio() {
    if role().as_deref() == Some("threads") {
        logbus::init().unwrap();
        // Threads stay alive until every thread is done (the barrier), so that
        // all of them write at once, each with its own writer, while nobody
        // consumes.
        let done = Arc::new(Barrier::new(THREADS + 1));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let done = done.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        tracing::info!(thread = t as u64, i = i as u64, "from a thread");
                    }
                    done.wait();
                })
            })
            .collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    tokio::spawn(async move {
                        let span = tracing::info_span!("task", task = t as u64);
                        for i in 0..PER_TASK {
                            let _g = span.enter();
                            tracing::info!(i = i as u64, "from a task");
                            drop(_g);
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        done.wait();
        for h in handles {
            h.join().unwrap();
        }
        return;
    }
    let dir = TempDir::new("threads");
    let (pid, _) = run_child("many_threads_and_tokio", "threads", &dir.ring(), &[]);
    let stats = logbus_ring::Ring::open_existing(dir.ring())
        .unwrap()
        .stats();
    let recs = drain(&dir.ring());
    assert_eq!(stats.total().dropped, 0, "{stats:?}");
    assert_eq!(
        recs.len(),
        THREADS * PER_THREAD + TASKS * PER_TASK,
        "{stats:?}"
    );
    assert!(recs.iter().all(|r| r.pid == pid));
    let mut seen = vec![vec![false; PER_THREAD]; THREADS];
    let mut tids = std::collections::HashMap::new();
    let mut tasks = vec![vec![false; PER_TASK]; TASKS];
    for r in &recs {
        let u = |k| match r.field(k) {
            Some(V::U64(v)) => *v as usize,
            other => panic!("{k}: {other:?} in {r:?}"),
        };
        match r.message.as_str() {
            "from a thread" => {
                let t = u("thread");
                assert!(
                    !std::mem::replace(&mut seen[t][u("i")], true),
                    "duplicate {r:?}"
                );
                assert_eq!(*tids.entry(t).or_insert(r.tid), r.tid, "one tid per thread");
            }
            "from a task" => {
                assert!(!std::mem::replace(&mut tasks[u("task")][u("i")], true));
            }
            other => panic!("unexpected record {other}"),
        }
    }
    assert!(
        seen.iter().flatten().all(|&s| s),
        "a thread record is missing"
    );
    assert!(
        tasks.iter().flatten().all(|&s| s),
        "a task record is missing"
    );
    let distinct: std::collections::HashSet<_> = tids.values().collect();
    assert_eq!(distinct.len(), THREADS);
}

#[test]
fn thousands_of_short_lived_threads_fill_the_default_ring_with_no_reader() {
    // Each thread writes a few records and exits, giving its block back: the
    // next ones adopt the room left in those blocks, so the ring takes every
    // record although it has far fewer blocks than there are threads.
    const THREADS: u64 = 3000;
    const EACH: u64 = 3;
    let dir = TempDir::new("short-lived");
    let producer = logbus::Builder::new()
        .ring_path(dir.ring())
        .producer()
        .unwrap();
    for t in 0..THREADS {
        let p = producer.clone();
        std::thread::spawn(move || {
            for k in 0..EACH {
                let msg = format!("thread {t} record {k}");
                let o = p.emit(&logbus::Event::new(9, &msg));
                assert!(
                    matches!(o, logbus::Outcome::Written { .. }),
                    "{t}/{k}: {o:?}"
                );
            }
        })
        .join()
        .unwrap();
    }
    let ring = producer.ring().unwrap();
    let stats = ring.stats();
    assert_eq!(stats.unaccounted(&[0, 0, THREADS * EACH, 0, 0, 0]), None);
    assert_eq!(stats.level(logbus_ring::Level::Info).unread, THREADS * EACH);
    assert!(THREADS > stats.blocks, "more threads than blocks");
}

#[test]
fn two_hundred_threads_log_at_once_into_the_default_ring_and_nothing_is_refused() {
    // The default ring, the Producer API alone: every thread gets a writer
    // (there is no per-thread resource to run out of), every record lands.
    const THREADS: usize = 200;
    const EACH: usize = 100;
    let dir = TempDir::new("threads");
    let producer = logbus::Builder::new()
        .ring_path(dir.ring())
        .producer()
        .unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (p, b) = (producer.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                (0..EACH)
                    .filter(|k| {
                        let msg = format!("thread {t} record {k}");
                        matches!(
                            p.emit(&logbus::Event::new(17, &msg)),
                            logbus::Outcome::Written { .. }
                        )
                    })
                    .count()
            })
        })
        .collect();
    let written: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(written, THREADS * EACH);
    let stats = producer.ring().unwrap().stats();
    let total = (THREADS * EACH) as u64;
    assert_eq!(stats.unaccounted(&[0, 0, 0, 0, total, 0]), None);
    assert_eq!(stats.level(logbus_ring::Level::Error).unread, total);
}

/// Issue 10, item 6: the ring file deleted and created again while a producer
/// runs. Within a second the producer notices and writes into the new ring
/// (not into the deleted file nobody reads any more).
#[test]
fn a_producer_follows_its_ring_when_the_file_is_replaced() {
    if role().is_some() {
        return;
    }
    let dir = TempDir::new("replaced");
    let path = dir.path("ring");
    let producer = logbus::Producer::open(&path).unwrap();
    let event = logbus::Event::new(9, "before");
    assert!(matches!(
        producer.emit(&event),
        logbus::Outcome::Written { .. }
    ));
    std::fs::remove_file(&path).unwrap();
    let fresh = logbus_ring::Ring::create(&path, &logbus_ring::RingOptions::default()).unwrap();
    let replaced = std::time::Instant::now();
    // Emit until a record lands in the new ring (bounded well above 1 s).
    let mut landed = None;
    while replaced.elapsed() < std::time::Duration::from_secs(10) {
        producer.emit(&logbus::Event::new(9, "after"));
        if fresh.stats().total().emitted > 0 {
            landed = Some(replaced.elapsed());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let took = landed.expect("the producer never wrote into the new ring");
    assert!(
        took < std::time::Duration::from_millis(1500),
        "took {took:?}"
    );
}

/// A C shim for `LD_PRELOAD`: once the file named by `$LOGBUS_TEST_STEP_FILE`
/// exists, `CLOCK_REALTIME` reads one hour earlier (a wall-clock step back);
/// every other clock is untouched.
const CLOCK_STEP_SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    const char *f = getenv("LOGBUS_TEST_STEP_FILE");
    if (rc == 0 && id == CLOCK_REALTIME && f && access(f, F_OK) == 0) ts->tv_sec -= 3600;
    return rc;
}
"#;

/// Issue 10, item 11: a thread whose process could not reopen the ring
/// (a `fork()` child, the ring path unusable for a moment) retries after
/// `REOPEN_RETRY_NS` on the monotonic clock: a wall-clock step back by an
/// hour right after the failure does not stall it for an hour. The step is
/// real for the child process (an `LD_PRELOAD` shim over `clock_gettime`),
/// without touching the machine's clock.
#[test]
fn a_wall_clock_step_back_does_not_stall_a_retry() {
    if role().as_deref() == Some("clock-step") {
        clock_step_child();
        return;
    }
    if role().is_some() {
        return;
    }
    let dir = TempDir::new("clock-step");
    let src = dir.path("shim.c");
    let shim = dir.path("shim.so");
    std::fs::write(&src, CLOCK_STEP_SHIM).unwrap();
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&shim)
        .arg(&src)
        .arg("-ldl")
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!(
            "SKIPPED a_wall_clock_step_back_does_not_stall_a_retry: no C compiler (cc) to build the clock shim"
        );
        return;
    }
    let step = dir.path("stepped");
    let (_, out) = run_child(
        "a_wall_clock_step_back_does_not_stall_a_retry",
        "clock-step",
        &dir.ring(),
        &[
            ("LD_PRELOAD", shim.to_str().unwrap()),
            ("LOGBUS_TEST_STEP_FILE", step.to_str().unwrap()),
        ],
    );
    assert_eq!(reported(&out, "result"), "written", "{out:?}");
}

fn clock_step_child() {
    use std::time::{Duration, Instant};
    let ring = std::path::PathBuf::from(std::env::var("LOGBUS_RING").unwrap());
    let step = std::path::PathBuf::from(std::env::var("LOGBUS_TEST_STEP_FILE").unwrap());
    let producer = logbus::Producer::open(&ring).unwrap();
    // SAFETY: fork in this (re-executed) test process; the child only uses
    // the forking thread and ends with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid > 0 {
        let mut status = 0;
        // SAFETY: waiting for our own child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let code = libc::WEXITSTATUS(status);
        println!(
            "result={}",
            match code {
                0 => "written",
                2 => "no-step",
                3 => "first-not-unavailable",
                _ => "stalled",
            }
        );
        return;
    }
    // The fork child must reopen the ring; make that fail once.
    let aside = ring.with_extension("aside");
    std::fs::rename(&ring, &aside).unwrap();
    std::fs::create_dir(&ring).unwrap();
    let first = producer.emit(&logbus::Event::new(9, "while unavailable"));
    std::fs::remove_dir(&ring).unwrap();
    std::fs::rename(&aside, &ring).unwrap();
    let before = logbus_ring::now_ns();
    std::fs::write(&step, "").unwrap();
    let after = logbus_ring::now_ns();
    let code = if before.saturating_sub(after) < 3_000_000_000_000 {
        2
    } else if first != logbus::Outcome::Unavailable {
        3
    } else {
        let start = Instant::now();
        let mut written = false;
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(
                producer.emit(&logbus::Event::new(9, "after the step")),
                logbus::Outcome::Written { .. }
            ) {
                written = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if written {
            0
        } else {
            1
        }
    };
    // SAFETY: ends the fork child without running the parent's atexit
    // handlers or test harness teardown.
    unsafe { libc::_exit(code) };
}
