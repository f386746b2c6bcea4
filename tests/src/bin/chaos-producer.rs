//! `chaos-producer RING LEDGER --name NAME --threads N --seed S --max-msg M
//!  --until-ms T`: a Rust producer of the chaos harness (`logbus-chaos`).
//!
//! Logs the way applications do: `logbus::Builder::init` (the global
//! `tracing` subscriber writing to RING, filter `trace`) and `tracing`
//! macros from N threads, each following the workload of
//! `logbus_tests::chaos::workload` (seeded by S and its thread index) until
//! the wall clock passes T (ms since the Unix epoch), then exits 0. Each
//! record's message is `logbus_tests::chaos::token::message`; fields carry
//! the producer, thread and sequence number again; some records are logged
//! inside a span with `trace_id`/`span_id`. Before and after each record the
//! thread stores its books in the mapped LEDGER (`chaos::ledger`), so that a
//! SIGKILL leaves them readable.

use std::fs::OpenOptions;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use logbus_tests::chaos::ledger::{SLOT_BYTES, SLOT_WORDS};
use logbus_tests::chaos::rng::Rng;
use logbus_tests::chaos::token;
use logbus_tests::chaos::workload::{self, Phase};

struct Args {
    ring: String,
    ledger: String,
    name: String,
    threads: usize,
    seed: u64,
    max_msg: usize,
    until_ms: u64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let usage =
        "usage: chaos-producer RING LEDGER --name N --threads N --seed S --max-msg M --until-ms T";
    let mut a = Args {
        ring: it.next().ok_or(usage)?,
        ledger: it.next().ok_or(usage)?,
        name: "r".into(),
        threads: 1,
        seed: 0,
        max_msg: 1000,
        until_ms: 0,
    };
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || val.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--name" => a.name = val.clone(),
            "--threads" => a.threads = num()? as usize,
            "--seed" => a.seed = num()?,
            "--max-msg" => a.max_msg = num()? as usize,
            "--until-ms" => a.until_ms = num()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One thread's slot of the mapped ledger.
struct Slot<'a>(&'a [AtomicU64]);

impl Slot<'_> {
    // Relaxed everywhere: the only reader is the harness, after this process
    // has exited (or been killed), when every store is in the page cache; no
    // ordering between the words is relied on.
    fn start(&self, level: usize) {
        self.0[8].store(level as u64, Ordering::Relaxed);
        self.0[2 + level].fetch_add(1, Ordering::Relaxed);
        self.0[0].fetch_add(1, Ordering::Relaxed);
    }

    fn done(&self) {
        self.0[1].fetch_add(1, Ordering::Relaxed);
    }
}

fn emit(level: usize, name: &str, thread: u32, seq: u64, msg: &str) {
    macro_rules! at {
        ($lvl:expr) => {
            tracing::event!(
                target: "chaos::rust",
                $lvl,
                producer = name,
                thread = thread,
                seq = seq,
                even = seq % 2 == 0,
                "{msg}"
            )
        };
    }
    match level {
        0 => at!(tracing::Level::TRACE),
        1 => at!(tracing::Level::DEBUG),
        2 => at!(tracing::Level::INFO),
        3 => at!(tracing::Level::WARN),
        _ => at!(tracing::Level::ERROR),
    }
}

fn thread_main(a: &Args, slot: Slot<'_>, t: u32) {
    let mut rng = Rng::new(a.seed, u64::from(t) + 1);
    let mut seq = 0u64;
    while now_ms() < a.until_ms {
        let (count, pause) = match workload::phase(&mut rng) {
            Phase::Flood(n) => (n, None),
            Phase::Steady(n, p) => (n, Some(p)),
            Phase::Idle(d) => {
                std::thread::sleep(d);
                continue;
            }
        };
        for _ in 0..count {
            // tracing has no FATAL: levels TRACE .. ERROR.
            let level = workload::level(&mut rng, 5);
            let len = workload::length(&mut rng, a.max_msg);
            let msg = token::message(&a.name, t, seq, len);
            let traced = rng.chance(30);
            slot.start(level);
            if traced {
                let trace_id = format!("{:016x}{:016x}", rng.next_u64() | 1, seq);
                let span_id = format!("{:016x}", rng.next_u64() | 1);
                let span = tracing::info_span!("request", trace_id = %trace_id, span_id = %span_id);
                let _g = span.enter();
                emit(level, &a.name, t, seq, &msg);
            } else {
                emit(level, &a.name, t, seq, &msg);
            }
            slot.done();
            seq += 1;
            if let Some(p) = pause {
                std::thread::sleep(p);
            }
        }
    }
}

fn run(a: Args) -> Result<(), String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&a.ledger)
        .map_err(|e| format!("{}: {e}", a.ledger))?;
    file.set_len((a.threads * SLOT_BYTES) as u64)
        .map_err(|e| format!("{}: {e}", a.ledger))?;
    // SAFETY: the ledger is this producer's own file (the harness only reads
    // it); nobody truncates it while it is mapped.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(|e| e.to_string())?;
    let words = a.threads * SLOT_WORDS;
    // SAFETY: the mapping is page-aligned and `threads * SLOT_BYTES` long, so
    // it holds `words` aligned u64s; AtomicU64 has u64's layout; the mapping
    // outlives every thread (scoped below) and is only accessed atomically.
    let atoms: &[AtomicU64] =
        unsafe { std::slice::from_raw_parts(map.as_mut_ptr().cast::<AtomicU64>(), words) };
    logbus::Builder::new()
        .ring_path(&a.ring)
        .filter("trace")
        .service_name(a.name.clone())
        .init()
        .map_err(|e| e.to_string())?;
    std::thread::scope(|s| {
        for t in 0..a.threads {
            let slot = Slot(&atoms[t * SLOT_WORDS..(t + 1) * SLOT_WORDS]);
            let a = &a;
            std::thread::Builder::new()
                .name(format!("chaos-{t}"))
                .spawn_scoped(s, move || thread_main(a, slot, t as u32))
                .expect("spawn thread");
        }
    });
    drop(map);
    Ok(())
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-producer: {e}");
            ExitCode::FAILURE
        }
    }
}
