//! No heap allocation per event, proven with a counting global allocator in a
//! real program that called `logbus::init()` (this binary, re-executed).

mod common;

use common::{drain, reported, run_child, TempDir, V};

#[global_allocator]
static GLOBAL: logbus_testkit::alloc::CountingAlloc = logbus_testkit::alloc::CountingAlloc;

const EVENTS: u64 = 1000;

/// Runs `f` `EVENTS` times after 10 warm-up calls; returns allocations counted.
fn allocations(f: impl FnMut(u64)) -> u64 {
    logbus_testkit::alloc::allocations(10, EVENTS, f)
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Point {
    x: i32,
    y: i32,
}

#[test]
fn no_allocation_per_event() {
    if common::child_role().as_deref() == Some("alloc") {
        // A ring large enough to hold every record of this thread (nobody
        // consumes meanwhile); init() then opens it as it is.
        let options = logbus::RingOptions {
            size: 64 << 20,
            ..Default::default()
        };
        logbus::Ring::create(std::env::var("LOGBUS_RING").unwrap(), &options).unwrap();
        logbus::init().unwrap();
        let point = Point { x: 1, y: -2 };
        // Span fields are copied at span creation; events inside must not allocate.
        let span = tracing::info_span!("request", user = "ada", attempt = 2u64);
        let _g = span.enter();
        let layer = allocations(|i| {
            tracing::info!(
                i,
                ratio = 0.25,
                ok = true,
                name = "widget",
                point = ?point,
                delta = -5i64,
                "processed item {} of {}",
                i,
                EVENTS
            );
        });
        println!("LAYER={layer}");
        let bridged = allocations(|i| log::info!(i, kind = "bridged"; "log record {i}"));
        println!("BRIDGE={bridged}");
        // An OpenTelemetry context attached: reading it must not allocate either.
        #[cfg(feature = "otel")]
        let otel = {
            use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
            let sc = SpanContext::new(
                0x4bf92f3577b34da6a3ce929d0e0e4736u128.into(),
                0x00f067aa0ba902b7u64.into(),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            let _cx = opentelemetry::Context::current()
                .with_remote_span_context(sc)
                .attach();
            allocations(|i| tracing::warn!(i, "with trace context"))
        };
        #[cfg(not(feature = "otel"))]
        let otel = 0;
        println!("OTEL={otel}");
        let producer = logbus::Producer::open(std::env::var("LOGBUS_RING").unwrap()).unwrap();
        let fields = |i| {
            [
                logbus::Field {
                    key: "i",
                    value: logbus::Value::U64(i),
                },
                logbus::Field {
                    key: "s",
                    value: logbus::Value::Str("text"),
                },
                logbus::Field {
                    key: "f",
                    value: logbus::Value::F64(1.5),
                },
            ]
        };
        let direct = allocations(|i| {
            producer.emit(&logbus::Event {
                target: "direct",
                fields: &fields(i),
                ..logbus::Event::new(9, "direct record")
            });
        });
        println!("PRODUCER={direct}");
        // The counter does count: one box per call.
        println!(
            "SANITY={}",
            allocations(|i| drop(std::hint::black_box(Box::new(i))))
        );
        return;
    }
    let dir = TempDir::new("alloc");
    let (_, out) = run_child("no_allocation_per_event", "alloc", &dir.ring(), &[]);
    assert_eq!(reported(&out, "SANITY"), EVENTS.to_string());
    for part in ["LAYER", "BRIDGE", "OTEL", "PRODUCER"] {
        assert_eq!(
            reported(&out, part),
            "0",
            "{part}: allocations in {EVENTS} events"
        );
    }
    // And the events were really written (not filtered out or dropped).
    let recs = drain(&dir.ring());
    let n = |m: &str| recs.iter().filter(|r| r.message.starts_with(m)).count() as u64;
    assert_eq!(n("processed item"), EVENTS + 10);
    assert_eq!(n("log record"), EVENTS + 10);
    assert_eq!(n("direct record"), EVENTS + 10);
    assert_eq!(
        n("with trace context"),
        if cfg!(feature = "otel") {
            EVENTS + 10
        } else {
            0
        }
    );
    let r = recs
        .iter()
        .find(|r| r.message == "processed item 999 of 1000")
        .unwrap();
    assert_eq!(r.fields.len(), 8, "{r:?}");
    assert_eq!(
        r.field("point"),
        Some(&V::Str("Point { x: 1, y: -2 }".into()))
    );
    assert_eq!(r.field("user"), Some(&V::Str("ada".into())));
}
