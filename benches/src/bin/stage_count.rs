//! Instructions per record of each stage a record goes through, from emit
//! to the file sink's write, counted by callgrind (deterministic, unlike
//! times on a shared machine).
//!
//! ```sh
//! cargo build --release -p logbus-benches --bin stage_count
//! target/release/stage_count            # runs itself under callgrind, prints the table
//! target/release/stage_count 50 4096    # the same, rounds and records per round given
//! ```
//!
//! What it does: `valgrind --tool=callgrind --dump-instr=no
//! --callgrind-out-file=<tmp> target/release/stage_count run ROUNDS K`, then
//! `callgrind_annotate --inclusive=yes` of that file; each stage below is one
//! `#[inline(never)]` function of this binary, called once per round over K
//! records, and its inclusive instruction count divided by ROUNDS * K is the
//! figure printed. Rounds are many (50 by default) so that what the first
//! round does once (allocating buffers, faulting pages in, the first
//! resource lookup) is amortized to a fraction of an instruction per record.
//!
//! The record is the throughput harness's (`emit_collector_record`: INFO,
//! target `bench::http`, message `request handled`, fields `request_id`,
//! `path`, `latency_ms`) from a writer with a registered resource (service
//! `bench-service`), so JSON lines carry `service` as in the collector.
//!
//! Stages (per record):
//! - `stage_emit`: `logbus_ring::Writer::emit` of the record (clock read included);
//! - `stage_producer_emit`: `logbus::Producer::emit` of the same record
//!   (thread-local writer lookup, pid/tid; its ring is drained untimed);
//! - `stage_poll`: `Consumer::poll` (copy out of shared memory + validate);
//! - `stage_resolve`: the reader's `Chunk::resolve` (levels, block ends, resources);
//! - `stage_write_json` / `stage_write_text`: `logbus_format::write_json` /
//!   `write_text` alone, into a reused buffer;
//! - `stage_lines_json` / `stage_lines_text`: `Chunk::lines` (the same
//!   formatting as the sinks get it, with the line ends);
//! - `stage_sink_null` / `stage_sink_json_file` / `stage_sink_text_file`: a
//!   line sink's `write` of the whole chunk, lines already formatted (copy
//!   into its 64 KiB buffer and `write(2)`; the kernel's side is not counted);
//! - `stage_sink_json_alone` / `stage_sink_text_alone`: the same by a sink
//!   that is the only one of its format, so formats the records itself into
//!   its buffer (the one-file collector's path: formatting and copying);
//! - `stage_commit`: `Consumer::commit_all`.

use std::path::Path;
use std::process::Command;

use logbus_benches::{bench_writer, emit_collector_record, fail, TempPath};
use logbus_collector::bench_hooks::{Dest, Stages};
use logbus_collector::Format;
use logbus_ring::{Batch, Consumer, Emitted, Ring, RingOptions, Writer};

/// The stages, in the order printed.
const STAGES: &[&str] = &[
    "stage_emit",
    "stage_producer_emit",
    "stage_poll",
    "stage_resolve",
    "stage_write_json",
    "stage_write_text",
    "stage_lines_json",
    "stage_lines_text",
    "stage_sink_null",
    "stage_sink_json_file",
    "stage_sink_text_file",
    "stage_sink_json_alone",
    "stage_sink_text_alone",
    "stage_commit",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, default: usize| {
        args.get(i).map_or(default, |a| {
            a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}")))
        })
    };
    if args.get(1).map(String::as_str) == Some("run") {
        run(num(2, 50), num(3, 4096));
    } else {
        report(num(1, 50), num(2, 4096));
    }
}

/// Runs `run` under callgrind and prints instructions per record per stage.
fn report(rounds: usize, k: usize) {
    let out = TempPath::new("-callgrind.out");
    let exe = std::env::current_exe().expect("exe");
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--dump-instr=no"])
        .arg(format!("--callgrind-out-file={}", out.path().display()))
        .arg(&exe)
        .args(["run", &rounds.to_string(), &k.to_string()])
        .status()
        .unwrap_or_else(|e| fail(format_args!("valgrind: {e}")));
    if !status.success() {
        fail("valgrind failed");
    }
    let ann = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(out.path())
        .output()
        .unwrap_or_else(|e| fail(format_args!("callgrind_annotate: {e}")));
    let text = String::from_utf8_lossy(&ann.stdout);
    let records = (rounds * k) as f64;
    println!("instructions per record ({rounds} rounds of {k} records, callgrind):");
    for stage in STAGES {
        let needle = format!("stage_count::{stage} ");
        let count = text
            .lines()
            .find(|l| l.contains(&needle) || l.ends_with(&format!("stage_count::{stage}")))
            .and_then(|l| l.split_whitespace().next())
            .map(|n| n.replace(',', "").parse::<f64>().unwrap_or(0.0));
        match count {
            Some(c) => println!("  {stage:<22} {:>8.1}", c / records),
            None => println!("  {stage:<22} (not found)"),
        }
    }
}

#[inline(never)]
fn stage_emit(w: &mut Writer, first: u64, k: usize) {
    for i in first..first + k as u64 {
        if !matches!(emit_collector_record(w, i), Emitted::Written { .. }) {
            fail("emit refused");
        }
    }
}

#[inline(never)]
fn stage_producer_emit(p: &logbus::Producer, first: u64, k: usize) {
    for i in first..first + k as u64 {
        let fields = [
            logbus::Field {
                key: "request_id",
                value: logbus::Value::U64(i),
            },
            logbus::Field {
                key: "path",
                value: logbus::Value::Str("/api/v1/orders"),
            },
            logbus::Field {
                key: "latency_ms",
                value: logbus::Value::F64(12.5),
            },
        ];
        let ev = logbus::Event {
            target: "bench::http",
            fields: &fields,
            ..logbus::Event::new(9, "request handled")
        };
        if !matches!(p.emit(&ev), logbus::Outcome::Written { .. }) {
            fail("producer emit refused");
        }
    }
}

#[inline(never)]
fn drain(c: &mut Consumer, b: &mut Batch, k: usize) {
    if c.poll(b, k) != k {
        fail("producer ring: records missing");
    }
    c.commit_all();
}

#[inline(never)]
fn stage_poll(s: &mut Stages, c: &mut Consumer, k: usize) {
    if s.poll(c, k) != k {
        fail("records missing");
    }
}

#[inline(never)]
fn stage_resolve(s: &mut Stages) {
    s.resolve();
}

#[inline(never)]
fn stage_write_json(s: &Stages, out: &mut Vec<u8>) {
    out.clear();
    for r in s.batch().iter() {
        logbus_format::write_json(out, &r, Some("bench-service"));
    }
}

#[inline(never)]
fn stage_write_text(s: &Stages, out: &mut Vec<u8>) {
    out.clear();
    for r in s.batch().iter() {
        logbus_format::write_text(out, &r, Some("bench-service"));
    }
}

#[inline(never)]
fn stage_lines_json(s: &Stages) -> usize {
    s.lines(Format::Json)
}

#[inline(never)]
fn stage_lines_text(s: &Stages) -> usize {
    s.lines(Format::Text)
}

#[inline(never)]
fn stage_sink_null(s: &mut Stages) {
    s.write(Dest::Null);
}

#[inline(never)]
fn stage_sink_json_file(s: &mut Stages) {
    s.write(Dest::JsonFile);
}

#[inline(never)]
fn stage_sink_text_file(s: &mut Stages) {
    s.write(Dest::TextFile);
}

#[inline(never)]
fn stage_sink_json_alone(s: &mut Stages) {
    s.write_alone(Dest::JsonFile);
}

#[inline(never)]
fn stage_sink_text_alone(s: &mut Stages) {
    s.write_alone(Dest::TextFile);
}

#[inline(never)]
fn stage_commit(c: &mut Consumer) {
    c.commit_all();
}

fn run(rounds: usize, k: usize) {
    let ring_path = TempPath::new("-stages");
    let prod_path = TempPath::new("-stages-producer");
    let json = TempPath::new("-stages.json");
    let text = TempPath::new("-stages.txt");
    let ring = Ring::create(ring_path.path(), &RingOptions::default()).expect("ring");
    let mut w = bench_writer(&ring, "stage_count");
    let mut consumer = Consumer::acquire(&ring).expect("consumer");
    Ring::create(prod_path.path(), &RingOptions::default()).expect("producer ring");
    let producer = logbus::Producer::open(prod_path.path()).expect("producer");
    let prod_ring = producer.ring().expect("producer ring");
    let mut prod_consumer = Consumer::acquire(&prod_ring).expect("producer consumer");
    let mut prod_batch = Batch::new();
    let mut stages = Stages::new(&ring, json.path(), text.path());
    let mut out = Vec::new();
    let (mut json_bytes, mut text_bytes) = (0, 0);
    for round in 0..rounds {
        let first = (round * k) as u64;
        stage_emit(&mut w, first, k);
        stage_producer_emit(&producer, first, k);
        drain(&mut prod_consumer, &mut prod_batch, k);
        stage_poll(&mut stages, &mut consumer, k);
        stage_resolve(&mut stages);
        stage_write_json(&stages, &mut out);
        stage_write_text(&stages, &mut out);
        json_bytes = stage_lines_json(&stages);
        text_bytes = stage_lines_text(&stages);
        stage_sink_null(&mut stages);
        stage_sink_json_file(&mut stages);
        stage_sink_text_file(&mut stages);
        stage_sink_json_alone(&mut stages);
        stage_sink_text_alone(&mut stages);
        stage_commit(&mut consumer);
        if round % 8 == 7 {
            truncate(json.path());
            truncate(text.path());
        }
    }
    println!(
        "{} records; lines of {} B (JSON) and {} B (text)",
        rounds * k,
        json_bytes / k,
        text_bytes / k
    );
}

/// Keeps the output files small (the sinks append; the size is not theirs to track here).
fn truncate(p: &Path) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .expect("output file");
    f.set_len(0).expect("truncate");
}
