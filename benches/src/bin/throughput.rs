//! Multi-process throughput of the collector, end to end.
//!
//! `cargo run --release -p logbus-benches --bin throughput [-- RECORDS_PER_PRODUCER]`
//!
//! For one and then two producer processes writing as fast as they can, and a
//! collector process with (a) a `null` sink (discard, formatting nothing: the
//! collector's own cost)
//! (b) a JSON `file` sink on `/dev/shm`, and (c) `multi`: three sinks at once
//! (stdout as JSON, redirected to a file on `/dev/shm`, a JSON file and a text
//! file: the records are formatted once per format), measures records per second from
//! the producers' start until the collector has finished every record
//! (delivered, or dropped by the sink's overflow policy when the sink cannot
//! keep up: the rate counts delivered records only, and the drops are
//! printed), the collector's CPU time per delivered record (`wait4` rusage of
//! the collector), and the CPU of its reader and sink threads
//! (`/proc/self/task/*/schedstat`). Right after each file run, the reference:
//! the same JSON bytes (the file sink's own output) written line by line
//! through a 64 KiB `BufWriter` to `/dev/shm`, with its CPU time per line
//! (`RUSAGE_THREAD`); the file run's collector CPU per record over it is the
//! "cpu x" column. For `multi`, "cpu x" is the collector's CPU per record over
//! the median of the same round's one-file runs. Every configuration runs
//! [`ROUNDS`] times, interleaved; the summary gives medians. Last, the
//! collector's CPU over 10 s with an empty ring (idle).
//!
//! The ring is the default one (16 MiB in 512 blocks of 32 KiB; see `run`). A
//! record the ring refuses (the INFO watermark is reached: the collector is
//! behind) is retried after a 50 us sleep, so every record gets through and
//! the run measures the collector. A producer spinning on a full ring instead
//! (`sched_yield`) would take one of this machine's two cores away from the
//! collector it waits for.
//!
//! The example re-executes itself as the producer (`produce`) and collector
//! (`collect`) processes; the collector runs the library exactly as the
//! `logbus-collector` binary does.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus_benches::{bench_writer, emit_collector_record};
use logbus_collector::config::{Config, Format, SinkConfig, SinkKind};
use logbus_collector::{Collector, Control};
use logbus_ring::{Emitted, Ring, RingOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("produce") => produce(
            Path::new(&args[2]),
            args[3].parse().expect("count"),
            args.get(4).is_some_and(|a| a == "paced"),
        ),
        Some("collect") => collect(
            Path::new(&args[2]),
            &args[3],
            Path::new(&args[4]),
            args[5].parse().expect("expect"),
        ),
        Some("components") => components(),
        Some("idle") => idle(&bench_dir(), 10),
        other => bench(other.map_or(5_000_000, |n| n.parse().expect("records per producer"))),
    }
}

/// Single-threaded cost of each stage, warm (memory touched before timing):
/// emit, poll (copy out + validate), write_json into a reused buffer.
fn components() {
    use logbus_ring::{Batch, Consumer};
    let path = logbus_benches::TempPath::new("-components");
    let ring = Ring::create(
        path.path(),
        &RingOptions {
            ..RingOptions::default()
        },
    )
    .expect("ring");
    let mut w = ring.writer().expect("writer");
    let mut consumer = Consumer::acquire(&ring).expect("consumer");
    let mut batch = Batch::new();
    let mut out = Vec::with_capacity(1 << 20);
    let per_round = 16_384u64; // about 3 MiB: below the INFO watermark
    let (mut t_emit, mut t_poll, mut t_fmt, mut n) = (0f64, 0f64, 0f64, 0u64);
    for round in 0..200 {
        let t = Instant::now();
        for i in 0..per_round {
            assert!(matches!(
                emit_collector_record(&mut w, i),
                Emitted::Written { .. }
            ));
        }
        let e = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let got = consumer.poll(&mut batch, per_round as usize);
        let p = t.elapsed().as_secs_f64();
        assert_eq!(got as u64, per_round);
        let t = Instant::now();
        out.clear();
        for r in batch.iter() {
            logbus_format::write_json(&mut out, &r, Some("bench-service"));
        }
        let f = t.elapsed().as_secs_f64();
        consumer.commit_all();
        if round >= 20 {
            // The first rounds touch the memory.
            (t_emit, t_poll, t_fmt, n) = (t_emit + e, t_poll + p, t_fmt + f, n + per_round);
        }
    }
    let ns = |t: f64| t * 1e9 / n as f64;
    println!(
        "stages, one thread, warm: emit {:.1} ns, poll {:.1} ns, write_json {:.1} ns per record ({} B lines)",
        ns(t_emit),
        ns(t_poll),
        ns(t_fmt),
        out.len() / per_round as usize
    );
}

/// Producer process: `count` records, retried (after a 50 us sleep) when refused.
/// `paced`: every 4,096 records, waits (50 us sleeps) while more than 32,768
/// records are unread or uncommitted, so that no sink falls a queue behind and
/// sheds (the `multi` runs, whose three sinks go at different speeds).
fn produce(ring: &Path, count: u64, paced: bool) {
    let ring = Ring::open(ring).expect("open ring");
    let mut w = bench_writer(&ring, "throughput produce");
    for i in 0..count {
        if paced && i % 4096 == 0 {
            while ring.stats().total().unread > 32_768 {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        while let Emitted::Dropped = emit_collector_record(&mut w, i) {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Collector process: runs until its sink has delivered `expect` records
/// (`0`: until its standard input closes).
fn collect(ring: &Path, kind: &str, out: &Path, expect: u64) {
    let ring = Ring::open(ring).expect("open ring");
    let file = |path: PathBuf, format| SinkKind::File {
        path,
        format,
        max_bytes: None,
        keep: 0,
    };
    let sinks = match kind {
        "null" => vec![SinkConfig::new("bench", SinkKind::Null)],
        "multi" => vec![
            SinkConfig::new(
                "stdout",
                SinkKind::Stdout {
                    format: Format::Json,
                },
            ),
            SinkConfig::new("bench", file(out.to_path_buf(), Format::Json)),
            SinkConfig::new("text", file(with_suffix(out, ".txt"), Format::Text)),
        ],
        _ => vec![SinkConfig::new(
            "bench",
            file(out.to_path_buf(), Format::Json),
        )],
    };
    // The harness reads "ready" and the counts on the original standard
    // output; the stdout sink writes to a file next to `out`.
    let mut to_harness = redirect_stdout(kind == "multi", out);
    let config = Config {
        ring_path: None,
        ring_dir: None,
        shutdown_timeout: Duration::from_secs(60),
        sinks,
    };
    let mut collector =
        Collector::new(&ring, config, None, |n| eprintln!("collector: {n}")).expect("collector");
    let registry = collector.registry();
    let control = Arc::new(Control::new());
    let c2 = control.clone();
    let done = std::thread::spawn(move || {
        let sinks = registry.sinks();
        if expect == 0 {
            // Idle measurement: no polling watcher, whose own wake-ups would
            // be counted as the collector's CPU.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            c2.request_shutdown();
            return (0, 0, (0, 0));
        }
        // Relaxed: counters read to decide when to stop. A record is finished
        // when the sink wrote it, or dropped it because its queue was full.
        // Every sink must have finished; the counts are the slowest one's.
        let finished = |s: &logbus_collector::stats::SinkStats| {
            s.delivered.load(Ordering::Relaxed) + s.dropped_total()
        };
        while sinks.iter().any(|s| finished(s) < expect) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let threads = thread_cpu();
        c2.request_shutdown();
        (
            sinks
                .iter()
                .map(|s| s.delivered.load(Ordering::Relaxed))
                .min()
                .unwrap_or(0),
            sinks.iter().map(|s| s.dropped_total()).max().unwrap_or(0),
            threads,
        )
    });
    writeln!(to_harness, "ready").expect("stdout");
    to_harness.flush().expect("stdout");
    collector.run(&control);
    let (delivered, dropped, (reader, sink)) = done.join().expect("watcher");
    writeln!(to_harness, "{delivered} {dropped} {reader} {sink}").expect("stdout");
    to_harness.flush().expect("stdout");
}

/// `path` with `suffix` appended.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The harness's end of the pipe: standard output as it was. With
/// `redirect`, file descriptor 1 then goes to `<out>.stdout` (the stdout sink's
/// destination).
fn redirect_stdout(redirect: bool, out: &Path) -> File {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: duplicates our own standard output; the new descriptor is
    // owned by the returned File alone.
    let fd = unsafe { libc::dup(1) };
    assert!(fd >= 0, "dup");
    if redirect {
        let f = File::create(with_suffix(out, ".stdout")).expect("stdout file");
        // SAFETY: both descriptors are open; fd 1 now names the file.
        assert!(unsafe { libc::dup2(f.into_raw_fd(), 1) } == 1, "dup2");
    }
    // SAFETY: `fd` is open and owned by nobody else.
    unsafe { File::from_raw_fd(fd) }
}

/// CPU time (ns, from `/proc/self/task/*/schedstat`) of the reader (the main
/// thread) and of the sink threads, so far.
fn thread_cpu() -> (u64, u64) {
    let (mut reader, mut sink) = (0, 0);
    let me = std::process::id().to_string();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = task.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        if name == me {
            reader += ns;
        } else if comm.starts_with("sink-") {
            sink += ns;
        }
    }
    (reader, sink)
}

struct Run {
    /// Records the sink delivered per second.
    rate: f64,
    /// Records the sink dropped (its queue was full: it could not keep up).
    dropped: u64,
    cpu_ns: f64,
    /// CPU of the reader thread and of the sink thread, per delivered record.
    reader_ns: f64,
    sink_ns: f64,
    secs: f64,
    /// The file sink's output (removed for the null sink).
    out: PathBuf,
}

/// Starts a collector process on `ring` (see `collect`) and waits until it is
/// ready; returns it and its standard output (where its counts come last).
fn spawn_collector(
    ring: &Path,
    kind: &str,
    out: &Path,
    expect: u64,
    stdin: Stdio,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut coll = Command::new(std::env::current_exe().expect("exe"))
        .arg("collect")
        .args([ring, Path::new(kind), out])
        .arg(expect.to_string())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn collector");
    let mut from_collector = BufReader::new(coll.stdout.take().expect("stdout"));
    let mut line = String::new();
    from_collector.read_line(&mut line).expect("ready");
    assert_eq!(line.trim(), "ready");
    (coll, from_collector)
}

// The collector child is reaped with wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn run(producers: u64, per_producer: u64, kind: &str, dir: &Path) -> Run {
    let ring = dir.join(format!("logbus-bench-ring-{}", std::process::id()));
    let out = dir.join(format!("logbus-bench-{kind}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&ring);
    let _ = std::fs::remove_file(&out);
    // The default ring (16 MiB in 512 blocks of 32 KiB). A far larger ring
    // measured lower: its blocks are cold in every cache by the time they
    // are read.
    Ring::create(&ring, &ring_options()).expect("create ring");
    let exe = std::env::current_exe().expect("exe");
    let total = producers * per_producer;
    let (coll, mut from_collector) = spawn_collector(&ring, kind, &out, total, Stdio::null());
    let mut line = String::new();
    let t0 = Instant::now();
    let ps: Vec<_> = (0..producers)
        .map(|_| {
            Command::new(&exe)
                .args(["produce", ring.to_str().unwrap()])
                .arg(per_producer.to_string())
                .arg(if kind == "multi" { "paced" } else { "free" })
                .spawn()
                .expect("spawn producer")
        })
        .collect();
    for mut p in ps {
        assert!(p.wait().expect("producer").success());
    }
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid for the call.
    let r = unsafe { libc::wait4(coll.id() as i32, &mut status, 0, &mut usage) };
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(r, coll.id() as i32, "wait4");
    line.clear();
    from_collector.read_line(&mut line).expect("counts");
    let mut counts = line
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("count"));
    let mut next = || counts.next().unwrap_or(0);
    let (delivered, dropped, reader_ns, sink_ns) = (next(), next(), next(), next());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "collector failed"
    );
    let cpu = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    let cpu_ns = cpu(usage.ru_utime) + cpu(usage.ru_stime);
    let _ = std::fs::remove_file(&ring);
    if kind != "file" {
        let _ = std::fs::remove_file(&out);
    }
    if kind == "multi" {
        let _ = std::fs::remove_file(with_suffix(&out, ".txt"));
        let _ = std::fs::remove_file(with_suffix(&out, ".stdout"));
    }
    Run {
        rate: delivered as f64 / secs,
        dropped,
        cpu_ns: cpu_ns / delivered.max(1) as f64,
        reader_ns: reader_ns as f64 / delivered.max(1) as f64,
        sink_ns: sink_ns as f64 / delivered.max(1) as f64,
        secs,
        out,
    }
}

/// This thread's CPU time (user + system) so far, in ns.
fn thread_cpu_ns() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let t = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Writes the lines of `sample` (cycled) `lines` times through a 64 KiB
/// BufWriter; returns lines per second and CPU ns per line.
fn reference(sample: &[u8], lines: u64, dir: &Path) -> (f64, f64) {
    let path: PathBuf = dir.join(format!("logbus-bench-ref-{}.json", std::process::id()));
    let rows: Vec<&[u8]> = sample.split_inclusive(|&b| b == b'\n').collect();
    let t0 = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut w = BufWriter::with_capacity(64 * 1024, File::create(&path).expect("ref file"));
    for i in 0..lines as usize {
        w.write_all(rows[i % rows.len()]).expect("write");
    }
    w.flush().expect("flush");
    drop(w);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_ns() - cpu0;
    let _ = std::fs::remove_file(&path);
    (lines as f64 / secs, cpu / lines as f64)
}

/// The benchmark's ring (see `run`).
fn ring_options() -> RingOptions {
    RingOptions {
        ..RingOptions::default()
    }
}

/// Rounds of every configuration; the summary gives medians.
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Where rings and files go: `/dev/shm` (else `/tmp`).
fn bench_dir() -> PathBuf {
    PathBuf::from(if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    })
}

fn bench(per_producer: u64) {
    let dir = bench_dir();
    components();
    let geo = ring_options();
    println!(
        "records per producer: {per_producer}; ring: {} blocks of {} B; {ROUNDS} rounds",
        geo.geometry().blocks,
        geo.block_size
    );
    println!(
        "{:<6} {:<10} {:<6} {:>12} {:>6} {:>14} {:>12} {:>6} {:>14} {:>6} {:>8} {:>6}",
        "round",
        "producers",
        "sink",
        "delivered/s",
        "drops",
        "collector ns",
        "reader/sink",
        "secs",
        "reference/s",
        "ratio",
        "ref cpu",
        "cpu x"
    );
    let configs = [
        (1u64, "null"),
        (1, "file"),
        (2, "null"),
        (2, "file"),
        (1, "multi"),
    ];
    // Per configuration and round: rate, collector CPU ns, rate ratio,
    // reference CPU ns per line, CPU ratio.
    type Row = (f64, f64, f64, f64, f64);
    let mut results: Vec<Vec<Row>> = vec![Vec::new(); configs.len()];
    for round in 1..=ROUNDS {
        let mut file_cpu = Vec::new();
        for (c, &(producers, kind)) in configs.iter().enumerate() {
            if kind != "null" {
                let outputs = if kind == "multi" { 3 } else { 1 };
                recycle_memory(&dir, outputs * producers * per_producer * 256);
            }
            let r = run(producers, per_producer, kind, &dir);
            // The reference right after the run it is compared with: the file
            // sink's own output (the same JSON bytes) written again.
            let reference = (kind == "file").then(|| reference_from_output(&dir, &r.out));
            let ratio = reference.map(|(lines_s, _)| r.rate / lines_s);
            let cpu_x = match (kind, reference) {
                ("file", Some((_, ref_cpu))) => {
                    file_cpu.push(r.cpu_ns);
                    Some(r.cpu_ns / ref_cpu)
                }
                ("multi", _) => Some(r.cpu_ns / median(file_cpu.clone())),
                _ => None,
            };
            println!(
                "{round:<6} {producers:<10} {kind:<6} {:>12.0} {:>6} {:>14.1} {:>12} {:>6.2} {:>14} {:>6} {:>8} {:>6}",
                r.rate,
                r.dropped,
                r.cpu_ns,
                format!("{:.0}/{:.0}", r.reader_ns, r.sink_ns),
                r.secs,
                reference.map_or(String::new(), |(l, _)| format!("{l:.0}")),
                ratio.map_or(String::new(), |x| format!("{:.0} %", x * 100.0)),
                reference.map_or(String::new(), |(_, c)| format!("{c:.1}")),
                cpu_x.map_or(String::new(), |x| format!("{x:.2}")),
            );
            results[c].push((
                r.rate,
                r.cpu_ns,
                ratio.unwrap_or(0.0),
                reference.map_or(0.0, |r| r.1),
                cpu_x.unwrap_or(0.0),
            ));
        }
    }
    println!("median of {ROUNDS} rounds:");
    for (c, &(producers, kind)) in configs.iter().enumerate() {
        let col = |f: fn(&Row) -> f64| median(results[c].iter().map(f).collect());
        let extra = match kind {
            "file" => format!(
                ", {:.0} % of the reference; reference CPU {:.1} ns/line, collector CPU {:.2}x it",
                col(|r| r.2) * 100.0,
                col(|r| r.3),
                col(|r| r.4)
            ),
            "multi" => format!(
                " (stdout + JSON file + text file), {:.2}x the one-file runs' CPU",
                col(|r| r.4)
            ),
            _ => String::new(),
        };
        println!(
            "  {producers} producer(s), {kind} sink: {:.0} records/s, collector CPU {:.1} ns/record{extra}",
            col(|r| r.0),
            col(|r| r.1),
        );
    }
    idle(&dir, 10);
}

/// Writes `bytes` to a file in `dir` and deletes it, so that the file run
/// that follows gets its tmpfs pages from memory just freed, as the
/// reference (written right after a run's output is deleted) does. This
/// machine is a VM whose kernel reports free memory back to the host
/// (`page_reporting`): a page it has reported costs a host fault when used
/// again, and without this the file sink paid those faults and the reference
/// did not (its runs varied threefold, in kernel time).
fn recycle_memory(dir: &Path, bytes: u64) {
    let path = dir.join(format!("logbus-bench-recycle-{}", std::process::id()));
    let chunk = vec![b'\n'; 64 * 1024];
    let mut f = File::create(&path).expect("recycle file");
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).expect("recycle write");
        left -= n as u64;
    }
    drop(f);
    std::fs::remove_file(&path).expect("recycle remove");
}

/// CPU time (user + system) of process `pid` so far, in ms (from
/// `/proc/PID/stat`, in clock ticks of 10 ms).
fn process_cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the comm.
    (f[11] + f[12]) * 1000 / 100
}

/// The collector's CPU over `secs` seconds with an empty ring.
fn idle(dir: &Path, secs: u64) {
    let ring = dir.join(format!("logbus-bench-idle-{}", std::process::id()));
    let _ = std::fs::remove_file(&ring);
    Ring::create(&ring, &RingOptions::default()).expect("create ring");
    let (mut coll, mut from_collector) =
        spawn_collector(&ring, "null", Path::new("/dev/null"), 0, Stdio::piped());
    let mut line = String::new();
    let before = process_cpu_ms(coll.id());
    std::thread::sleep(Duration::from_secs(secs));
    let used = process_cpu_ms(coll.id()) - before;
    drop(coll.stdin.take()); // asks it to shut down
    from_collector.read_line(&mut line).expect("counts");
    assert!(coll.wait().expect("collector").success());
    let _ = std::fs::remove_file(&ring);
    println!(
        "idle: the collector used {used} ms of CPU in {secs} s with an empty ring ({:.2} % of a core)",
        used as f64 / (secs as f64 * 10.0)
    );
}

/// Writes the file sink's output (up to 64 MiB of it, cycled to its full
/// line count) again through a 64 KiB `BufWriter`; returns (lines/s, CPU ns
/// per line) and removes the output.
fn reference_from_output(dir: &Path, out: &Path) -> (f64, f64) {
    let mut sample = Vec::new();
    File::open(out)
        .expect("file sink output")
        .take(64 << 20)
        .read_to_end(&mut sample)
        .expect("read sample");
    let lines = std::fs::read(out)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .expect("count lines");
    let _ = std::fs::remove_file(out);
    let cut = sample
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    sample.truncate(cut);
    reference(&sample, lines, dir)
}
