//! The collector's per-record stages, one thread, warm: copying records out
//! of the ring (`Consumer::poll`: copy + validate) and formatting them as JSON
//! lines (`logbus_format::write_json`), next to `serde_json` writing the same
//! line from a derived struct (what a hand-written collector would use).
//!
//! The record is the multi-process throughput benchmark's: INFO, target
//! `bench::http`, message `request handled`, fields `request_id` (u64), `path`
//! (string), `latency_ms` (f64), with a service name. Times are per record.
//!
//! Run: `cargo bench -p logbus-benches --bench collect`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use logbus_benches::{emit_collector_record, TempPath};
use logbus_ring::{Batch, Consumer, Ring, RingOptions};
use serde::Serialize;

/// Records per poll (about 1 MiB: under the INFO watermark of the 4 MiB ring).
const BATCH: usize = 4096;

fn emit_batch(w: &mut logbus_ring::Writer, first: u64) {
    for i in first..first + BATCH as u64 {
        emit_collector_record(w, i);
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    level: &'a str,
    severity: u8,
    target: &'a str,
    msg: &'a str,
    pid: u32,
    tid: u32,
    seq: u64,
    service: &'a str,
    fields: Fields<'a>,
}

#[derive(Serialize)]
struct Fields<'a> {
    request_id: u64,
    path: &'a str,
    latency_ms: f64,
}

fn stages(c: &mut Criterion) {
    let path = TempPath::new("-collect");
    let ring = Ring::create(
        path.path(),
        &RingOptions {
            size: 4 << 20,
            ..RingOptions::default()
        },
    )
    .expect("ring");
    let mut w = ring.writer().expect("writer");
    let mut consumer = Consumer::acquire(&ring).expect("consumer");
    let mut batch = Batch::new();
    let mut g = c.benchmark_group("collect");
    g.throughput(Throughput::Elements(BATCH as u64));

    // Emitting is outside the timed part: each iteration emits a batch, then
    // times its poll.
    let mut seq = 0;
    g.bench_function("poll", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                emit_batch(&mut w, seq);
                seq += BATCH as u64;
                let t = Instant::now();
                let n = consumer.poll(&mut batch, BATCH);
                spent += t.elapsed();
                assert_eq!(n, BATCH);
                consumer.commit_all();
            }
            spent
        })
    });

    // One batch, formatted again and again.
    emit_batch(&mut w, 0);
    assert_eq!(consumer.poll(&mut batch, BATCH), BATCH);
    let mut out = Vec::with_capacity(BATCH * 300);
    g.bench_function("write_json", |b| {
        b.iter(|| {
            out.clear();
            for r in batch.iter() {
                logbus_format::write_json(&mut out, &r, Some("bench-service"));
            }
            out.len()
        })
    });
    g.bench_function("write_text", |b| {
        b.iter(|| {
            out.clear();
            for r in batch.iter() {
                logbus_format::write_text(&mut out, &r, Some("bench-service"));
            }
            out.len()
        })
    });
    // serde_json, given the record already decoded (its time text included):
    // the formatting alone.
    let mut time = Vec::new();
    logbus_format::write_rfc3339(&mut time, batch.get(0).expect("record").time_ns());
    let time = String::from_utf8(time).expect("utf-8");
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            out.clear();
            for r in batch.iter() {
                let line = Line {
                    time: &time,
                    level: r.level().name(),
                    severity: r.severity(),
                    target: r.target(),
                    msg: r.message(),
                    pid: r.pid(),
                    tid: r.tid(),
                    seq: r.seq(),
                    service: "bench-service",
                    fields: Fields {
                        request_id: r.seq(),
                        path: "/api/v1/orders",
                        latency_ms: 12.5,
                    },
                };
                serde_json::to_writer(&mut out, &line).expect("serialize");
                out.push(b'\n');
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, stages);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
