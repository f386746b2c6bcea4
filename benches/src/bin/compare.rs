//! logbus next to the alternatives, end to end, each in processes of its own
//! with one identical workload (issue 12).
//!
//! `cargo run --release -p logbus-benches --bin compare -- [ROUNDS] [RECORDS]`
//! (default 5 rounds of 2,000,000 records), then `benches/plot_ccdf.sh` for
//! the plot.
//!
//! **Workload.** `RECORDS` records of the benchmark record of
//! `benches/src/lib.rs` (INFO, `app::handler`, a 100-byte message, trace and
//! span ids), split evenly over 1 or 2 threads of one producer process, as
//! fast as they go, ending as JSON lines (the collector's schema, service
//! `bench-service`, about 330 bytes) in a file on `/dev/shm`. Each thread's
//! first record is written before the start (it makes the thread's writer);
//! the clock starts when all threads are released.
//!
//! **Systems** (rows of the table):
//! * `logbus wait`: a default ring (16 MiB, 512 blocks of 32 KiB) created in
//!   lossless mode (`RingOptions::wait_ms` = 1000, `logbus create --wait-ms
//!   1000`); the producer process writes through `logbus::Producer::emit`; a
//!   collector process runs the collector library as `logbus-collector` does
//!   (`Collector::new` + `run`, the config parsed from TOML by
//!   `config::parse`) with one JSON `file` sink. The library rather than the
//!   binary: the process is the same code, and it can tell the harness the
//!   moment its sink has every record (from the sink's counters), where the
//!   binary would have to be watched from outside.
//! * `logbus drop`: the same on a default ring without waiting: a record
//!   refused at the INFO watermark is lost (not retried).
//! * `logbus wait, null sink` and `logbus wait, 3 sinks` (stdout to
//!   /dev/null as JSON, a JSON file, a text file): for goals G2 and G4.
//! * `mutex BufWriter`: `Mutex<BufWriter<File>>` (8 KiB, `BufWriter::new`),
//!   the clock read before the lock, the line formatted under it
//!   (`json_line::write_record_json`, the collector's bytes) and written.
//! * `tracing-appender blocking` / `lossy`: `NonBlockingBuilder::default()
//!   .lossy(false)` / the default (lossy, 128,000 lines), its worker writing
//!   into a 64 KiB `BufWriter<File>` (it flushes after each batch it
//!   drains); each call formats the same line into a per-thread buffer and
//!   `write_all`s it through the `NonBlocking` writer (what
//!   `tracing_subscriber::fmt` does with its formatted event).
//! * `plain BufWriter`: one thread writing one preformatted line through a
//!   64 KiB `BufWriter<File>`: the ceiling, no formatting.
//! * `LTTng-UST tracepoint` (issue 19): the same record's fields (severity,
//!   target, message, trace and span ids; vpid and vtid as contexts) through
//!   an LTTng-UST tracepoint, recorded by a user-space session to a trace on
//!   `/dev/shm` (see `logbus_benches::lttng`), in its own `lttng-producer`
//!   process. delivered: the events in the trace (`babeltrace2`), until
//!   `lttng stop` returned (every kept event written); lost: events LTTng
//!   discarded (its buffers full); collector CPU and RSS: the LTTng daemons'
//!   (`lttng-sessiond`, `lttng-consumerd`) CPU over the run and their
//!   private memory (`RssAnon`) at its end. The harness starts a session
//!   daemon if none runs and stops it at the end; without LTTng-UST (see
//!   `benches/build.rs`) the row is skipped with the reason printed.
//!
//! **Metrics.** delivered/s: records in the file (null sink: delivered by
//! the sink) over the time from the producers' release until the last one
//! was written (collector: its `run` returned, sinks flushed; in-process:
//! flushed, tracing-appender's guard dropped). lost: records emitted but not
//! delivered. Emit latency: every 8th call of each thread timed alone with
//! `rdtsc` (the figures include an empty timer pair, printed first);
//! `LOGBUS_COMPARE_EVERY=1` times every call (N: every Nth).
//! CPU per record of the producer and the collector process: `wait4` rusage
//! of each (whole process lifetimes, start-up included); producer CPU per
//! record emitted, collector CPU per record delivered. Peak RSS: each
//! process's own `VmHWM` at its end (not `ru_maxrss`, which counts the
//! harness's memory at the spawn: see `procstat`). Collector RssAnon: the
//! collector process's private memory (`RssAnon` in `/proc/PID/status`: its
//! heap and stacks, the ring's shared pages apart), sampled by the harness
//! every 20 ms from the collector's start to its `@done`, the peak (LTTng:
//! its daemons' at the end). A quick look at the collector's memory alone:
//! `LOGBUS_COMPARE_ONLY=logbus-wait,logbus-multi compare 1 500000`.
//! faults: minor page faults of the producer threads in their timed loops
//! (`getrusage(RUSAGE_THREAD)`; the ring is allocated by `posix_fallocate` at create and mapped
//! with `MAP_POPULATE` by every process, so 0 means no timed emit met a
//! first touch; the plain writer's 15 or so are its 64 KiB buffer's pages). Before each run, a file as large as the run's output is
//! written to and deleted from `/dev/shm` (see `recycle_memory` in
//! `throughput.rs`: this VM returns freed memory to its host). Each round's
//! line (on stderr) also gives the collector's minor page faults over its
//! lifetime (`ru_minflt`): the first touches of its chunks' buffers.
//!
//! Every round runs every configuration, in an order rotated by one each
//! round; the table gives the median and [min-max] over rounds, the goal
//! ratios the median and [min-max] of the per-round ratios. The emit latency
//! samples of all rounds are written as a CCDF to
//! `benches/results/emit-latency.tsv` (plotted by `benches/plot_ccdf.py`),
//! the table and goals to `benches/results/compare.md`
//! (`LOGBUS_COMPARE_OUT=DIR`: to DIR instead). `LOGBUS_COMPARE_ONLY=a,b`
//! runs only the systems named (`logbus-wait`, `logbus-drop`, `logbus-null`,
//! `logbus-multi`, `mutex`, `appender-blocking`, `appender-lossy`, `plain`,
//! `lttng`),
//! without the goals. Every ring and output file of a run is removed after
//! it (not when the harness fails midway).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use logbus::{Outcome, Producer};
use logbus_benches::drive::{drive, sample_every, Emitter};
use logbus_benches::json_line::write_record_json;
use logbus_benches::latency::{self, LogHistogram};
use logbus_benches::lttng;
use logbus_benches::procstat::{self, Usage};
use logbus_benches::rounds::{cell, spread};
use logbus_benches::shm::{count_lines, recycle_memory};
use logbus_benches::{fail, EVENT};
use logbus_collector::{config, Collector, Control};
use logbus_ring::{monotonic_ns, now_ns, Ring, RingOptions};

const SERVICE: &str = "bench-service";
/// One call in this many is timed, unless `LOGBUS_COMPARE_EVERY` says otherwise.
const SAMPLE_EVERY: u64 = 8;
/// How long a producer waits for room in lossless mode.
const WAIT_MS: u32 = 1000;
/// Bytes of output a record makes, about (for `recycle_memory`).
const LINE_BYTES: u64 = 340;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    LogbusWait,
    LogbusDrop,
    LogbusNull,
    LogbusMulti,
    MutexBufWriter,
    AppenderBlocking,
    AppenderLossy,
    Plain,
    LttngUst,
}
use System::*;

impl System {
    const ALL: [System; 9] = [
        LogbusWait,
        LogbusDrop,
        LogbusNull,
        LogbusMulti,
        MutexBufWriter,
        AppenderBlocking,
        AppenderLossy,
        Plain,
        LttngUst,
    ];

    fn arg(self) -> &'static str {
        match self {
            LogbusWait => "logbus-wait",
            LogbusDrop => "logbus-drop",
            LogbusNull => "logbus-null",
            LogbusMulti => "logbus-multi",
            MutexBufWriter => "mutex",
            AppenderBlocking => "appender-blocking",
            AppenderLossy => "appender-lossy",
            Plain => "plain",
            LttngUst => "lttng",
        }
    }

    fn label(self) -> &'static str {
        match self {
            LogbusWait => "logbus wait, JSON file",
            LogbusDrop => "logbus drop, JSON file",
            LogbusNull => "logbus wait, null sink",
            LogbusMulti => "logbus wait, 3 sinks",
            MutexBufWriter => "mutex BufWriter",
            AppenderBlocking => "tracing-appender blocking",
            AppenderLossy => "tracing-appender lossy",
            Plain => "plain BufWriter",
            LttngUst => "LTTng-UST tracepoint",
        }
    }

    fn parse(s: &str) -> System {
        System::ALL
            .into_iter()
            .find(|x| x.arg() == s)
            .unwrap_or_else(|| fail(format_args!("unknown system {s}")))
    }

    /// For logbus: the ring's wait (lossless) mode and the collector's sinks.
    fn logbus(self) -> Option<(bool, &'static str)> {
        match self {
            LogbusWait => Some((true, "json")),
            LogbusDrop => Some((false, "json")),
            LogbusNull => Some((true, "null")),
            LogbusMulti => Some((true, "multi")),
            _ => None,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| -> &str { args.get(i).map_or("", String::as_str) };
    let num = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |a| {
            a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}")))
        })
    };
    match arg(1) {
        "produce" => produce(
            System::parse(arg(2)),
            num(3, 1) as usize,
            num(4, 0),
            Path::new(arg(5)),
            Path::new(arg(6)),
        ),
        "collect" => collect(Path::new(arg(2)), arg(3), Path::new(arg(4))),
        _ => bench(num(1, 5) as usize, num(2, 2_000_000)),
    }
}

// ---------------------------------------------------------------- producer

struct LogbusEmitter(Producer);

impl Emitter for LogbusEmitter {
    #[inline]
    fn emit(&mut self) -> bool {
        matches!(self.0.emit(&EVENT), Outcome::Written { .. })
    }
}

/// What a formatting thread knows of itself.
struct Me {
    pid: u32,
    tid: u32,
    seq: u64,
}

impl Me {
    fn new() -> Me {
        Me {
            pid: std::process::id(),
            tid: procstat::thread_id(),
            seq: 0,
        }
    }

    /// Formats the record, time now, into `line` (cleared first).
    #[inline]
    fn format(&mut self, line: &mut Vec<u8>, time_ns: u64) {
        line.clear();
        write_record_json(line, time_ns, self.pid, self.tid, self.seq, SERVICE);
        self.seq += 1;
    }
}

type SharedFile = Arc<Mutex<(BufWriter<File>, Vec<u8>)>>;

struct MutexEmitter(SharedFile, Me);

impl Emitter for MutexEmitter {
    #[inline]
    fn emit(&mut self) -> bool {
        let t = now_ns();
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (w, line) = &mut *g;
        self.1.format(line, t);
        w.write_all(line).unwrap_or_else(|e| fail(e));
        true
    }
}

struct AppenderEmitter(tracing_appender::non_blocking::NonBlocking, Me, Vec<u8>);

impl Emitter for AppenderEmitter {
    #[inline]
    fn emit(&mut self) -> bool {
        self.1.format(&mut self.2, now_ns());
        // Lossy mode counts what it drops in its error counter, read at the end.
        self.0.write_all(&self.2).unwrap_or_else(|e| fail(e));
        true
    }
}

struct PlainEmitter(BufWriter<File>, Vec<u8>);

impl Emitter for PlainEmitter {
    #[inline]
    fn emit(&mut self) -> bool {
        self.0.write_all(&self.1).unwrap_or_else(|e| fail(e));
        true
    }

    fn finish(&mut self) {
        self.0.flush().unwrap_or_else(|e| fail(e));
    }
}

/// Producer process: `records` records of `system` into `target` (the ring,
/// or the output file); prints `@result START_NS DONE_NS LOST FAULTS
/// PEAK_RSS_KIB` and
/// writes the latency samples (ticks, u32 LE) to `samples`.
fn produce(system: System, threads: usize, records: u64, target: &Path, samples: &Path) {
    let every = sample_every(SAMPLE_EVERY);
    let create = || File::create(target).unwrap_or_else(|e| fail(e));
    let (d, lost_after) = match system {
        LogbusWait | LogbusDrop | LogbusNull | LogbusMulti => {
            let p = logbus::Builder::new()
                .ring_path(target)
                .service_name(SERVICE)
                .producer()
                .unwrap_or_else(|e| fail(e));
            (
                drive(threads, records, every, || LogbusEmitter(p.clone())),
                0,
            )
        }
        MutexBufWriter => {
            let file: SharedFile = Arc::new(Mutex::new((BufWriter::new(create()), Vec::new())));
            let d = drive(threads, records, every, || {
                MutexEmitter(Arc::clone(&file), Me::new())
            });
            let mut g = file.lock().unwrap_or_else(|p| p.into_inner());
            g.0.flush().unwrap_or_else(|e| fail(e));
            (d, 0)
        }
        AppenderBlocking | AppenderLossy => {
            let (nb, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(system == AppenderLossy)
                .finish(BufWriter::with_capacity(64 << 10, create()));
            let errors = nb.error_counter();
            let d = drive(threads, records, every, || {
                AppenderEmitter(nb.clone(), Me::new(), Vec::with_capacity(512))
            });
            drop(guard); // waits (up to 1 s) for the worker to write and flush the rest
            (d, errors.dropped_lines() as u64)
        }
        Plain => {
            let mut line = Vec::new();
            Me::new().format(&mut line, now_ns());
            let w = Mutex::new(Some(BufWriter::with_capacity(64 << 10, create())));
            let d = drive(1, records, every, || {
                let w = w.lock().unwrap_or_else(|p| p.into_inner()).take();
                PlainEmitter(w.unwrap_or_else(|| fail("one thread only")), line.clone())
            });
            (d, 0)
        }
        LttngUst => fail("LTTng-UST runs in lttng-producer"),
    };
    d.report(lost_after, samples);
}

// ---------------------------------------------------------------- collector

/// The collector's TOML config for `sinks` (`json`, `null`, `multi`), output
/// files `out.json` and `out.txt`.
fn collector_toml(sinks: &str, out: &Path) -> String {
    let file = |name: &str, ext: &str| {
        format!(
            "[[sinks]]\nname = \"{name}\"\ntype = \"file\"\nformat = \"{name}\"\npath = \"{}.{ext}\"\n",
            out.display()
        )
    };
    let timeout = "[ring]\nshutdown_timeout = \"60s\"\n";
    match sinks {
        "null" => format!("{timeout}[[sinks]]\nname = \"null\"\ntype = \"null\"\n"),
        "multi" => format!(
            "{timeout}[[sinks]]\nname = \"stdout\"\ntype = \"stdout\"\nformat = \"json\"\n{}{}",
            file("json", "json"),
            file("text", "txt")
        ),
        _ => format!("{timeout}{}", file("json", "json")),
    }
}

/// Collector process: runs until every sink has finished (written or shed)
/// the number of records that a line on its standard input names; prints
/// `@ready`, then `@done DONE_NS DELIVERED SHED PEAK_RSS_KIB` (the first
/// sink's delivered, the most any sink shed) on standard error.
fn collect(ring: &Path, sinks: &str, out: &Path) {
    let ring = Ring::open_existing(ring).unwrap_or_else(|e| fail(e));
    let config = config::parse(&collector_toml(sinks, out), Path::new("compare.toml"))
        .unwrap_or_else(|e| fail(e));
    let mut collector = Collector::new(&ring, config, None, |n| eprintln!("collector: {n}"))
        .unwrap_or_else(|e| fail(e));
    let registry = collector.registry();
    let control = Arc::new(Control::new());
    let c2 = Arc::clone(&control);
    let watcher = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let expect: u64 = line.trim().parse().unwrap_or(0);
        let sinks = registry.sinks();
        // Relaxed: counters read to decide when to stop.
        let finished = |s: &logbus_collector::stats::SinkStats| {
            s.delivered.load(std::sync::atomic::Ordering::Relaxed) + s.dropped_total()
        };
        while sinks.iter().any(|s| finished(s) < expect) {
            std::thread::sleep(Duration::from_millis(1));
        }
        c2.request_shutdown();
        let delivered = sinks.first().map_or(0, |s| {
            s.delivered.load(std::sync::atomic::Ordering::Relaxed)
        });
        let shed = sinks.iter().map(|s| s.dropped_total()).max().unwrap_or(0);
        if shed > 0 {
            for s in &sinks {
                eprintln!(
                    "collector: sink {} delivered {} shed {}",
                    s.name,
                    s.delivered.load(std::sync::atomic::Ordering::Relaxed),
                    s.dropped_total()
                );
            }
        }
        (delivered, shed)
    });
    eprintln!("@ready");
    collector.run(&control);
    let done_ns = monotonic_ns();
    let (delivered, shed) = watcher
        .join()
        .unwrap_or_else(|_| fail("the watcher panicked"));
    eprintln!(
        "@done {done_ns} {delivered} {shed} {}",
        procstat::peak_rss_kib()
    );
}

// ---------------------------------------------------------------- harness

/// One run's figures.
#[derive(Clone, Debug, Default)]
struct Run {
    rate: f64,
    lost: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    producer: Usage,
    collector: Option<Usage>,
    /// Producer CPU per record emitted, collector CPU per record delivered
    /// (to the JSON file) and per record it read (all its producer wrote).
    producer_ns: f64,
    collector_ns: f64,
    collector_read_ns: f64,
    faults: f64,
    waits: u64,
}

/// A child's standard error: lines starting with `@` come back through the
/// channel, the others are passed on to ours.
fn protocol(stderr: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with('@') {
                let _ = tx.send(line);
            } else {
                eprintln!("{line}");
            }
        }
    });
    rx
}

/// The `n` numbers after the first word of a child's `@` line.
fn fields(line: &str, what: &str, n: usize) -> Vec<u64> {
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| {
            x.parse()
                .unwrap_or_else(|_| fail(format_args!("{what}: {line}")))
        })
        .collect();
    if v.len() != n {
        fail(format_args!("{what} said: {line:?}"))
    }
    v
}

// Children are reaped with wait4 (procstat::wait_child), for their rusage.
#[allow(clippy::zombie_processes)]
fn run(
    system: System,
    threads: usize,
    records: u64,
    dir: &Path,
    tick_ns: f64,
    hist: &mut LogHistogram,
) -> Run {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let base = dir.join(format!(
        "logbus-compare-{}-{}",
        std::process::id(),
        now_ns()
    ));
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", base.display()));
    let (ring, json, text, samples) = (with("ring"), with("json"), with("txt"), with("samples"));
    let cleanup = || {
        for p in [&ring, &json, &text, &samples] {
            let _ = std::fs::remove_file(p);
        }
    };
    recycle_memory(dir, records * LINE_BYTES);
    let collector = system.logbus().map(|(wait, sinks)| {
        let options = RingOptions {
            wait_ms: if wait { WAIT_MS } else { 0 },
            ..RingOptions::default()
        };
        drop(Ring::create(&ring, &options).unwrap_or_else(|e| fail(e)));
        let mut c = Command::new(&exe)
            .arg("collect")
            .args([&ring, Path::new(sinks), &base])
            .stdin(Stdio::piped())
            .stdout(Stdio::null()) // the stdout sink of `multi`
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(format_args!("cannot start the collector: {e}")));
        let rx = protocol(c.stderr.take().expect("piped"));
        if rx.recv().map_or(true, |l| l != "@ready") {
            fail("the collector did not start")
        }
        let anon = procstat::AnonSampler::start(c.id());
        (c, rx, anon)
    });
    let target = if collector.is_some() { &ring } else { &json };
    // LTTng: a recording session, and its daemons' CPU before the run.
    let session = (system == LttngUst).then(|| {
        let name = base
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        let s = lttng::Session::start(&name, &with("lttng")).unwrap_or_else(|e| fail(e));
        (s, lttng::daemons_usage().0)
    });
    let mut p = if system == LttngUst {
        let mut c = Command::new(exe.with_file_name("lttng-producer"));
        c.args([&threads.to_string(), &records.to_string()])
            .arg(&samples);
        c
    } else {
        let mut c = Command::new(&exe);
        c.args([
            "produce",
            system.arg(),
            &threads.to_string(),
            &records.to_string(),
        ])
        .args([target, &samples]);
        c
    }
    .stdout(Stdio::piped())
    .spawn()
    .unwrap_or_else(|e| fail(format_args!("cannot start the producer: {e}")));
    let mut out = String::new();
    let _ = p.stdout.take().expect("piped").read_to_string(&mut out);
    let (ok, mut producer) = procstat::wait_child(p.id()).unwrap_or_else(|e| fail(e));
    let result = out
        .lines()
        .find(|l| l.starts_with("@result "))
        .unwrap_or("");
    if !ok {
        fail(format_args!("the {} producer failed", system.label()))
    }
    let r = fields(result, "the producer", 5);
    let (start_ns, mut end_ns, producer_lost, faults) = (r[0], r[1], r[2], r[3]);
    producer.max_rss_kib = r[4];
    let mut delivered = records - producer_lost;
    let mut coll_usage = None;
    if let Some((mut c, rx, anon)) = collector {
        let mut to = c.stdin.take().expect("piped");
        writeln!(to, "{}", records - producer_lost).unwrap_or_else(|e| fail(e));
        let done = rx.recv().unwrap_or_else(|_| fail("the collector died"));
        let anon_peak_kib = anon.stop();
        let d = fields(&done, "the collector", 4);
        let (ok, mut usage) = procstat::wait_child(c.id()).unwrap_or_else(|e| fail(e));
        usage.max_rss_kib = d[3];
        usage.anon_peak_kib = anon_peak_kib;
        if !ok {
            fail(format_args!("the {} collector failed", system.label()))
        }
        end_ns = d[0];
        delivered = d[1];
        coll_usage = Some(usage);
    }
    if let Some((s, cpu_before)) = &session {
        s.stop().unwrap_or_else(|e| fail(e));
        end_ns = monotonic_ns();
        delivered = s.count_events().unwrap_or_else(|e| fail(e));
        let (cpu_after, anon_kib) = lttng::daemons_usage();
        coll_usage = Some(Usage {
            cpu_ns: cpu_after - cpu_before,
            max_rss_kib: anon_kib,
            minor_faults: 0,
            anon_peak_kib: anon_kib,
        });
    }
    drop(session);
    if system != LogbusNull && system != LttngUst {
        delivered = count_lines(&json);
    }
    // Records whose producer waited for room (lossless mode), for the log.
    let waits = Ring::open_existing(&ring).map_or(0, |r| r.stats().waits);
    let raw = std::fs::read(&samples).unwrap_or_else(|e| fail(e));
    cleanup();
    let mut ns: Vec<f64> = raw
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64 / tick_ns)
        .collect();
    ns.sort_unstable_by(f64::total_cmp);
    for &x in &ns {
        hist.add(x);
    }
    let secs = (end_ns.saturating_sub(start_ns)).max(1) as f64 / 1e9;
    Run {
        rate: delivered as f64 / secs,
        lost: (records - delivered.min(records)) as f64,
        p50: latency::percentile(&ns, 50.0),
        p99: latency::percentile(&ns, 99.0),
        p999: latency::percentile(&ns, 99.9),
        producer_ns: producer.cpu_ns / records as f64,
        collector_ns: coll_usage.map_or(f64::NAN, |u| u.cpu_ns / delivered.max(1) as f64),
        collector_read_ns: coll_usage.map_or(f64::NAN, |u| {
            u.cpu_ns / (records - producer_lost).max(1) as f64
        }),
        producer,
        collector: coll_usage,
        faults: faults as f64,
        waits,
    }
}

fn bench(rounds: usize, records: u64) {
    let rounds = rounds.max(1);
    let dir = PathBuf::from("/dev/shm");
    let results_dir = std::env::var_os("LOGBUS_COMPARE_OUT").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results")),
        PathBuf::from,
    );
    std::fs::create_dir_all(&results_dir).unwrap_or_else(|e| fail(e));
    let mut report = String::new();
    let mut say = |s: String| {
        println!("{s}");
        report.push_str(&s);
        report.push('\n');
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            let l = c.lines().find(|l| l.starts_with("model name"))?;
            Some(l.split(':').nth(1)?.trim().to_string())
        })
        .unwrap_or_default();
    say(format!(
        "compare: {rounds} rounds, {records} records a run; {} CPUs ({cpu}), kernel {}; load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        procstat::load_average()
    ));
    let tick_ns = latency::ticks_per_ns();
    let empty = latency::empty_pairs();
    say(format!(
        "timer: rdtsc at {tick_ns:.3} GHz; an empty timer pair: p50 {:.1} ns, p99 {:.1} ns, p99.9 {:.1} ns (included in every emit figure); 1 call in {} timed",
        latency::percentile(&empty, 50.0) as f64 / tick_ns,
        latency::percentile(&empty, 99.0) as f64 / tick_ns,
        latency::percentile(&empty, 99.9) as f64 / tick_ns,
        sample_every(SAMPLE_EVERY),
    ));
    // What the processes cost with nothing to do: part of every CPU figure.
    let idle = run(
        LogbusWait,
        1,
        0,
        &dir,
        tick_ns,
        &mut LogHistogram::default(),
    );
    let coll = idle.collector.unwrap_or_default();
    say(format!(
        "start-up and shutdown alone (0 records, logbus wait, JSON file): producer process {:.1} ms CPU, {} MiB; collector process {:.1} ms CPU, {} MiB; {:.1} / {:.1} ns per record at {records} records",
        idle.producer.cpu_ns / 1e6,
        idle.producer.max_rss_kib / 1024,
        coll.cpu_ns / 1e6,
        coll.max_rss_kib / 1024,
        idle.producer.cpu_ns / records as f64,
        coll.cpu_ns / records as f64,
    ));
    // LOGBUS_COMPARE_ONLY=a,b: only these systems (for trying things out;
    // the goals need all of them).
    let only = std::env::var("LOGBUS_COMPARE_ONLY").unwrap_or_default();
    let wanted = |s: System| only.is_empty() || only.split(',').any(|o| o == s.arg());
    // The LTTng row needs its daemon (kept running for the whole run).
    let _lttng = if wanted(LttngUst) {
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        lttng::Daemon::start(&exe.with_file_name("lttng-producer"))
            .map_err(|e| say(format!("LTTng-UST row skipped: {e}")))
            .ok()
    } else {
        None
    };
    let mut configs: Vec<(System, usize)> = Vec::new();
    for threads in [1, 2] {
        for s in System::ALL {
            if (s != Plain || threads == 1) && wanted(s) && (s != LttngUst || _lttng.is_some()) {
                configs.push((s, threads));
            }
        }
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    let mut hists = vec![LogHistogram::default(); configs.len()];
    for round in 0..rounds {
        for k in 0..configs.len() {
            let c = (k + round) % configs.len();
            let (s, t) = configs[c];
            let r = run(s, t, records, &dir, tick_ns, &mut hists[c]);
            eprintln!(
                "round {} {:<28} {t} thr: {:>6.2} M/s lost {:>8} p50 {:>6.0} p99.9 {:>8.0} ns cpu {:.0}/{:.0} ns faults {} waits {} collector faults {} RssAnon peak {:.1} MiB",
                round + 1,
                s.label(),
                r.rate / 1e6,
                r.lost,
                r.p50,
                r.p999,
                r.producer_ns,
                r.collector_ns,
                r.faults,
                r.waits,
                r.collector.map_or(0, |u| u.minor_faults),
                r.collector.map_or(0, |u| u.anon_peak_kib) as f64 / 1024.0
            );
            runs[c].push(r);
        }
    }
    say(format!(
        "\nmedian [min-max] over {rounds} rounds; latency per emit call in ns; CPU ns per record; RSS in MiB\n"
    ));
    say("| system | producer threads | delivered M/s | lost | emit p50 | emit p99 | emit p99.9 | producer CPU | collector CPU | producer RSS | collector RSS | collector RssAnon MiB | faults in emits |".into());
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    for (c, &(s, t)) in configs.iter().enumerate() {
        let col = |f: fn(&Run) -> f64| runs[c].iter().map(f).collect::<Vec<f64>>();
        say(format!(
            "| {} | {t} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.label(),
            cell(&col(|r| r.rate), 1e6, 2),
            cell(&col(|r| r.lost), 1.0, 0),
            cell(&col(|r| r.p50), 1.0, 0),
            cell(&col(|r| r.p99), 1.0, 0),
            cell(&col(|r| r.p999), 1.0, 0),
            cell(&col(|r| r.producer_ns), 1.0, 0),
            cell(&col(|r| r.collector_ns), 1.0, 0),
            cell(&col(|r| r.producer.max_rss_kib as f64), 1024.0, 0),
            cell(
                &col(|r| r.collector.map_or(f64::NAN, |u| u.max_rss_kib as f64)),
                1024.0,
                0
            ),
            cell(
                &col(|r| r.collector.map_or(f64::NAN, |u| u.anon_peak_kib as f64)),
                1024.0,
                1
            ),
            cell(&col(|r| r.faults), 1.0, 0),
        ));
    }
    if only.is_empty() {
        goals(&configs, &runs, &mut say);
    } else {
        say("\ngoals: not computed (LOGBUS_COMPARE_ONLY)".into());
    }
    say(format!(
        "\nload average at end: {}",
        procstat::load_average()
    ));
    let ccdf = results_dir.join("emit-latency.tsv");
    let mut f = BufWriter::new(File::create(&ccdf).unwrap_or_else(|e| fail(e)));
    for (c, &(s, t)) in configs.iter().enumerate() {
        let label = format!("{} ({t} thr)", s.label());
        hists[c]
            .write_ccdf(&mut f, &label)
            .unwrap_or_else(|e| fail(e));
    }
    f.flush().unwrap_or_else(|e| fail(e));
    std::fs::write(results_dir.join("compare.md"), report).unwrap_or_else(|e| fail(e));
    println!(
        "emit latency CCDF: {} (plot: benches/plot_ccdf.sh)",
        ccdf.display()
    );
}

/// The goal lines of issue 12, from per-round ratios of one run.
fn goals(configs: &[(System, usize)], runs: &[Vec<Run>], say: &mut impl FnMut(String)) {
    let find = |s: System, t: usize| {
        let i = configs.iter().position(|&c| c == (s, t)).expect("config");
        &runs[i]
    };
    // Per-round ratios a/b of f.
    let ratio = |a: &[Run], b: &[Run], f: fn(&Run) -> f64| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| f(x) / f(y)).collect()
    };
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let rounds = runs[0].len();
    say(String::new());
    for t in [1, 2] {
        let (w, m) = (find(LogbusWait, t), find(MutexBufWriter, t));
        let r = ratio(w, m, |r| r.rate);
        let lost: f64 = w.iter().map(|r| r.lost).sum();
        say(format!(
            "G1 ({t} thr) lossless: logbus wait delivered/s / mutex BufWriter = {} (goal >= 1.5), lost {lost} in {rounds} rounds (goal 0): {}",
            cell(&r, 1.0, 2),
            verdict(spread(&r).0 >= 1.5 && lost == 0.0)
        ));
    }
    let plain = find(Plain, 1);
    for t in [1, 2] {
        // The plain run has no collector: its producer's CPU per line.
        let r: Vec<f64> = find(LogbusWait, t)
            .iter()
            .zip(plain)
            .map(|(w, p)| w.collector_ns / p.producer_ns)
            .collect();
        say(format!(
            "G2 ({t} thr) collector CPU per record, JSON file / plain BufWriter CPU per line = {} (goal <= 2): {}",
            cell(&r, 1.0, 2),
            verdict(spread(&r).0 <= 2.0)
        ));
        let null: Vec<f64> = find(LogbusNull, t).iter().map(|r| r.collector_ns).collect();
        say(format!(
            "G2 ({t} thr) null sink: collector CPU per record = {} ns (goal <= 60): {}",
            cell(&null, 1.0, 1),
            verdict(spread(&null).0 <= 60.0)
        ));
    }
    for s in [LogbusWait, LogbusDrop] {
        for t in [1, 2] {
            let r = ratio(find(s, t), find(MutexBufWriter, t), |r| r.p50);
            let p999: Vec<f64> = find(s, t).iter().map(|r| r.p999).collect();
            say(format!(
                "G3 ({t} thr) {}: emit p50 / mutex p50 = {} (goal <= 0.6), p99.9 = {} ns (goal < 500): {}",
                s.label(),
                cell(&r, 1.0, 2),
                cell(&p999, 1.0, 0),
                verdict(spread(&r).0 <= 0.6 && spread(&p999).0 < 500.0)
            ));
        }
    }
    // Issue 19's G2: logbus's emit against LTTng-UST's tracepoint.
    if configs.iter().any(|&(s, _)| s == LttngUst) {
        for s in [LogbusWait, LogbusDrop] {
            for t in [1, 2] {
                let (l, u) = (find(s, t), find(LttngUst, t));
                let p50 = ratio(l, u, |r| r.p50);
                let p999 = ratio(l, u, |r| r.p999);
                say(format!(
                    "LTTng ({t} thr) {}: emit p50 / LTTng-UST p50 = {}, p99.9 / LTTng-UST p99.9 = {} (goal <= 0.5 each): {}",
                    s.label(),
                    cell(&p50, 1.0, 2),
                    cell(&p999, 1.0, 2),
                    verdict(spread(&p50).0 <= 0.5 && spread(&p999).0 <= 0.5)
                ));
            }
        }
    }
    for t in [1, 2] {
        let (m, j) = (find(LogbusMulti, t), find(LogbusWait, t));
        let per_line = ratio(m, j, |r| r.collector_ns);
        let per_read = ratio(m, j, |r| r.collector_read_ns);
        let shed: Vec<f64> = m.iter().map(|r| r.lost).collect();
        say(format!(
            "G4 ({t} thr) collector CPU per record, 3 sinks / JSON file = {} per JSON line delivered, {} per record read (goal <= 1.6); the 3-sink JSON file lost {} records a run: {}",
            cell(&per_line, 1.0, 2),
            cell(&per_read, 1.0, 2),
            cell(&shed, 1.0, 0),
            verdict(spread(&per_line).0 <= 1.6 && spread(&shed).2 == 0.0)
        ));
    }
}
