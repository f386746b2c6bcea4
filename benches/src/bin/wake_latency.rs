//! Idle-to-delivery latency: how long after `emit` a lone record's line
//! appears on an idle `logbus-collector`'s stdout.
//!
//! Starts the real `logbus-collector` (the one built next to this binary, or
//! `--collector PATH`) on a fresh default-geometry ring in `/dev/shm`, with
//! its stdout piped here; a reader thread timestamps every line as it arrives.
//! Then, per sample: sleep an idle gap (the collector has nothing to do), take
//! the time, emit one record (this process's own writer, message `wake-N`),
//! and wait for its line. The latency is the line's arrival time minus the
//! time taken just before `emit`.
//!
//! Short samples have idle gaps of 50-500 ms (a fixed pseudo-random sequence,
//! the same in every run); long samples follow idle gaps of several seconds.
//! Also prints the collector's CPU time over the whole run (utime + stime
//! from `/proc/PID/stat`): the run is idle nearly all the time.
//!
//! This file uses only the API that the ring before the block design (commit
//! fcfca29) had as well, so the same file builds on both sides of a
//! before/after comparison.
//!
//! Run: `cargo build --release -p logbus-collector-bin && cargo run --release
//! -p logbus-benches --bin wake_latency [-- SHORT_SAMPLES LONG_SAMPLES LONG_IDLE_S]`
//! (default 200 short samples, 3 long ones after 5 s idle each).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use logbus_benches::{fail, TempPath, SEVERITY};
use logbus_ring::{Emitted, Event, Ring, RingOptions};

/// Waits at most this long for any one line.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// The collector's CPU time so far (utime + stime, in clock ticks).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e3
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut collector = std::env::current_exe()
        .unwrap_or_else(|e| fail(e))
        .with_file_name("logbus-collector");
    if args.peek().map(String::as_str) == Some("--collector") {
        args.next();
        collector = PathBuf::from(args.next().unwrap_or_else(|| fail("--collector PATH")));
    }
    let mut num = |default: u64| {
        args.next().map_or(default, |a| {
            a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}")))
        })
    };
    let (short, long, long_idle) = (num(200), num(3), num(5));
    if !collector.exists() {
        fail(format_args!(
            "{} is not built: cargo build --release -p logbus-collector-bin",
            collector.display()
        ));
    }

    let path = TempPath::new("-wake");
    let ring = Ring::create(path.path(), &RingOptions::default()).unwrap_or_else(|e| fail(e));
    let mut child = Command::new(&collector)
        .arg("--ring")
        .arg(path.path())
        .env_remove("LOGBUS_RING")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(format_args!("{}: {e}", collector.display())));
    let pid = child.id();
    let out = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });

    let mut w = ring.writer().unwrap_or_else(|e| fail(e));
    // Emits `wake-N` and returns when its line arrived, minus the time just
    // before the emit.
    let mut sample = |n: u64| -> Duration {
        let msg = format!("wake-{n}");
        let ev = Event {
            severity: SEVERITY,
            time_ns: 0,
            target: "bench::wake",
            message: &msg,
            fields: &[],
            trace_id: None,
            span_id: None,
            trace_flags: 0,
        };
        let t0 = Instant::now();
        match w.emit(&ev) {
            Ok(Emitted::Written { .. }) => {}
            other => fail(format_args!("emit returned {other:?}")),
        }
        let needle = format!("\"{msg}\"");
        loop {
            match rx.recv_timeout(LINE_TIMEOUT) {
                Ok((at, line)) if line.contains(&needle) => return at - t0,
                Ok(_) => {}
                Err(e) => fail(format_args!("no line for {msg} from the collector: {e}")),
            }
        }
    };

    // The collector is up once it delivers a first record.
    sample(0);
    let cpu0 = cpu_ticks(pid);
    let wall0 = Instant::now();
    // A fixed pseudo-random sequence of gaps, 50-500 ms.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lat = Vec::with_capacity(short as usize);
    for n in 1..=short {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(50 + x % 451));
        lat.push(sample(n));
    }
    let mut long_lat = Vec::new();
    for n in 0..long {
        std::thread::sleep(Duration::from_secs(long_idle));
        long_lat.push(sample(short + 1 + n));
    }
    let wall = wall0.elapsed();
    let cpu = cpu_ticks(pid) - cpu0;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let _ = child.kill();
    let _ = child.wait();
    // Killed, it could not remove its status file next to the ring.
    let _ = std::fs::remove_file(logbus_collector::status::status_path(path.path()));

    lat.sort_unstable();
    println!(
        "collector {}; {short} samples after 50-500 ms idle: p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us",
        collector.display(),
        us(percentile(&lat, 50.0)),
        us(percentile(&lat, 90.0)),
        us(percentile(&lat, 99.0)),
        us(*lat.last().expect("samples")),
    );
    let long_us: Vec<String> = long_lat.iter().map(|d| format!("{:.0}", us(*d))).collect();
    println!(
        "{long} samples after {long_idle} s idle: [{}] us",
        long_us.join(", ")
    );
    println!(
        "collector CPU over the {:.0} s run: {:.0} ms ({:.3} % of a core)",
        wall.as_secs_f64(),
        cpu as f64 / hz * 1e3,
        cpu as f64 / hz / wall.as_secs_f64() * 100.0
    );
}
