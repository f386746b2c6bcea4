//! The producer's per-event cost: `tracing::info!` with 3 fields through
//! `logbus::layer()`, the same through tracing-appender's non-blocking JSON
//! writer, the same with no layer at all (tracing's own cost), and
//! `Producer::emit` with the same 3 fields and no `tracing`; for reference, the
//! ring's own `Writer::emit` of that record and one `clock_gettime`.
//!
//! Every competitor runs the same harness ([`timed`]): the calls are timed in
//! chunks of at most [`CHUNK`] events, and after each chunk, untimed, the
//! competitor settles: the ring is drained by a consumer so that every
//! measured record is really written (not dropped by the overflow policy);
//! tracing-appender's worker thread drains its channel on its own, as it does
//! in production (lossy mode, its default; lines it dropped are reported).
//!
//! Run: `cargo bench -p logbus-benches --bench producer`. See `BENCHMARKS.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use logbus_ring::{Batch, Consumer, Ring, RingOptions};
use logbus_testkit::TempDir;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// Events per timed chunk: far fewer than INFO records may fill of the bench
/// ring (75 % of 256 MiB), so a chunk never meets a full ring.
const CHUNK: u64 = 16_384;

/// The fields of the `info!` event, for the benchmarks that emit without
/// tracing: `request_id`, `route`, `latency`.
fn fields(i: u64) -> [logbus::Field<'static>; 3] {
    [
        logbus::Field {
            key: "request_id",
            value: logbus::Value::U64(i),
        },
        logbus::Field {
            key: "route",
            value: logbus::Value::Str("/checkout"),
        },
        logbus::Field {
            key: "latency",
            value: logbus::Value::F64(0.25),
        },
    ]
}

/// Times `iters` calls of `event`, running `settle` (untimed) after every chunk.
fn timed(iters: u64, mut event: impl FnMut(u64), mut settle: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let start = Instant::now();
        for i in done..done + n {
            event(black_box(i));
        }
        total += start.elapsed();
        done += n;
        settle();
    }
    total
}

/// The event every `tracing` competitor records.
#[inline(always)]
fn info_3_fields(i: u64) {
    tracing::info!(
        request_id = i,
        route = "/checkout",
        latency = 0.25,
        "request handled"
    );
}

/// Drains every unread record of a ring.
struct Drain {
    consumer: Consumer,
    batch: Batch,
}

impl Drain {
    fn new(ring: &Ring) -> Drain {
        Drain {
            consumer: Consumer::acquire(ring).expect("consume the bench ring"),
            batch: Batch::new(),
        }
    }
    fn all(&mut self) {
        while self.consumer.poll(&mut self.batch, 65_536) > 0 {
            self.consumer.commit_all();
        }
    }
}

fn bench(c: &mut Criterion) {
    let dir = TempDir::new("bench-producer");
    let ring_path = dir.ring();
    // 256 MiB: a chunk (see CHUNK) is far below the INFO watermark.
    let options = RingOptions {
        size: 256 << 20,
        ..RingOptions::default()
    };
    let ring = Ring::create(&ring_path, &options).expect("create the bench ring");
    let mut drain = Drain::new(&ring);

    let mut g = c.benchmark_group("producer");
    g.sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);

    // tracing with no layer: the floor every tracing competitor pays.
    let none = Dispatch::new(tracing_subscriber::registry());
    tracing::dispatcher::with_default(&none, || {
        g.bench_function("tracing_no_layer", |b| {
            b.iter_custom(|iters| timed(iters, info_3_fields, || {}))
        });
    });

    // logbus::layer(), unfiltered (the event is INFO: a filter would pass it).
    let layer = logbus::Builder::new()
        .ring_path(&ring_path)
        .service_name("bench")
        .build_layer()
        .expect("logbus layer");
    let logbus = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&logbus, || {
        g.bench_function("logbus_layer", |b| {
            b.iter_custom(|iters| timed(iters, info_3_fields, || drain.all()))
        });
    });

    // tracing-appender: fmt's JSON layer writing through `non_blocking` to a file.
    let file = std::fs::File::create(dir.path("appender.json")).expect("appender file");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let lost = writer.error_counter();
    let json = tracing_subscriber::fmt::layer().json().with_writer(writer);
    let appender = Dispatch::new(tracing_subscriber::registry().with(json));
    tracing::dispatcher::with_default(&appender, || {
        g.bench_function("tracing_appender_json", |b| {
            b.iter_custom(|iters| timed(iters, info_3_fields, || {}))
        });
    });
    drop(appender);
    drop(guard); // flushes what the worker still has
    eprintln!(
        "tracing_appender_json: {} lines dropped by the non-blocking writer (lossy mode)",
        lost.dropped_lines()
    );

    // Producer::emit: the same record without tracing.
    let producer = logbus::Producer::open(&ring_path).expect("producer");
    g.bench_function("producer_emit", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                |i| {
                    let fields = fields(i);
                    black_box(producer.emit(&logbus::Event {
                        target: "producer",
                        fields: &fields,
                        ..logbus::Event::new(9, "request handled")
                    }));
                },
                || drain.all(),
            )
        })
    });
    // The ring's own Writer::emit, same record: what Producer::emit adds
    // on top is the difference (thread-local lookup).
    let mut writer = ring.writer().expect("a writer");
    g.bench_function("ring_writer_emit", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                |i| {
                    let fields = fields(i);
                    let _ = black_box(writer.emit(&logbus::Event {
                        target: "producer",
                        fields: &fields,
                        ..logbus::Event::new(9, "request handled")
                    }));
                },
                || drain.all(),
            )
        })
    });
    drop(writer);

    // The clock read every record needs: the floor under both emits.
    g.bench_function("clock_gettime", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                |_| {
                    let mut ts = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    // SAFETY: `ts` is a valid, writable timespec.
                    black_box(unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) });
                    black_box(ts);
                },
                || {},
            )
        })
    });
    g.finish();

    drain.all();
    let stats = ring.stats();
    let t = stats.total();
    eprintln!(
        "logbus ring: {} records written, {} dropped, {} evicted (must be 0 and 0)",
        t.published, t.dropped, t.evicted
    );
    assert_eq!(
        (t.dropped, t.evicted),
        (0, 0),
        "measured records were dropped"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
