//! What waking the consumer costs the emit path.
//!
//! One thread emits the benchmark record (that of `benches/emit.rs`) in bursts
//! of B records, with a 2 ms pause after each burst; each burst is timed
//! (`Instant` before and after). Three ways of draining the ring:
//!
//! * `none`: no consumer runs during the bursts; the emitting thread drains
//!   the ring itself in the pause (untimed). The consumer's `sleeping` word is
//!   never set: what every emit pays is the check alone (a load).
//! * `spin`: a consumer thread drains continuously and never sleeps (it polls
//!   in a busy loop): `sleeping` is never set either.
//! * `sleep`: a consumer thread drains as `logbus-collector` does, except that
//!   it sleeps on the ring's futex ([`Consumer::wait`]) at its first empty
//!   poll instead of after 50 (each of which yields the core: on a loaded
//!   machine 50 yields can outlast the pause), so the first record of nearly
//!   every burst finds it asleep and wakes it (a CAS and a `futex` system call
//!   on the emit path). The `wakeups` column counts them.
//!
//! `sleep` minus `spin`, per record, is the wake-up's cost amortized over a
//! burst of B records; B = 1 is a lone record after idle (the whole wake-up).
//! Prints the median over bursts of the time per record, and the ring's
//! `wakeups` counter.
//!
//! Run: `cargo run --release -p logbus-benches --bin wake_cost [-- BURSTS]`
//! (default 400 bursts for each B and mode).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use logbus_benches::{fail, Competitor, Emit, RingCompetitor};
use logbus_ring::{Batch, Consumer, Ring};

const PAUSE: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    None,
    Spin,
    Sleep,
}

fn drain(consumer: &mut Consumer, batch: &mut Batch) -> usize {
    let n = consumer.poll(batch, 1 << 16);
    if n > 0 {
        consumer.commit_all();
    }
    n
}

/// Consumer thread: drains until `stop`; returns (polls, sleeps).
fn consume(ring: &Ring, mode: Mode, stop: &AtomicBool) -> (u64, u64) {
    let mut consumer = Consumer::acquire(ring).unwrap_or_else(|e| fail(e));
    let mut batch = Batch::new();
    let (mut polls, mut sleeps) = (0u64, 0u64);
    // Relaxed: a flag polled in a loop; nothing is published through it.
    while !stop.load(Ordering::Relaxed) {
        polls += 1;
        if drain(&mut consumer, &mut batch) > 0 {
            continue;
        }
        if mode == Mode::Spin {
            std::hint::spin_loop();
        } else {
            sleeps += 1;
            consumer.wait(Some(Duration::from_millis(100)));
        }
    }
    while drain(&mut consumer, &mut batch) > 0 {}
    (polls, sleeps)
}

/// Median ns per record over `bursts` bursts of `b` records.
fn run(mode: Mode, b: u64, bursts: usize) -> (f64, u64) {
    let rc = RingCompetitor::new();
    let ring = rc.ring().clone();
    let mut w = rc.emitter();
    // RingCompetitor holds the consumer role: the `spin` and `sleep` threads
    // need it, so they get a ring of their own.
    let own = TempRing::new();
    let ring2 = own.ring.clone();
    let mut w2 = ring2.writer().unwrap_or_else(|e| fail(e));
    let stop = AtomicBool::new(false);
    let mut per_record = Vec::with_capacity(bursts);
    std::thread::scope(|s| {
        let consumer = (mode != Mode::None).then(|| {
            let (ring2, stop) = (&ring2, &stop);
            s.spawn(move || consume(ring2, mode, stop))
        });
        for _ in 0..bursts {
            std::thread::sleep(PAUSE);
            let t0 = Instant::now();
            if mode == Mode::None {
                for _ in 0..b {
                    w.emit_one();
                }
            } else {
                for _ in 0..b {
                    w2.emit_one();
                }
            }
            per_record.push(t0.elapsed().as_nanos() as f64 / b as f64);
            if mode == Mode::None {
                rc.reset();
            }
        }
        // Relaxed: see `consume`.
        stop.store(true, Ordering::Relaxed);
        if let Some(c) = consumer {
            let (polls, sleeps) = c
                .join()
                .unwrap_or_else(|_| fail("consumer thread panicked"));
            eprintln!("{mode:?} b={b}: consumer polls {polls}, sleeps {sleeps}");
        }
    });
    let used = if mode == Mode::None { &ring } else { &ring2 };
    let t = used.stats().total();
    if t.dropped + t.evicted + t.torn != 0 {
        fail(format_args!("the ring lost records: {t:?}"));
    }
    per_record.sort_by(f64::total_cmp);
    (per_record[per_record.len() / 2], used.stats().wakeups)
}

/// A default-size ring of the benchmark's own in `/dev/shm`, for a consumer thread.
struct TempRing {
    ring: Ring,
    _path: logbus_benches::TempPath,
}

impl TempRing {
    fn new() -> TempRing {
        let path = logbus_benches::TempPath::new("-wake-cost");
        let ring =
            Ring::create(path.path(), &RingCompetitor::options()).unwrap_or_else(|e| fail(e));
        TempRing { ring, _path: path }
    }
}

fn main() {
    let bursts: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}"))))
        .unwrap_or(400);
    println!(
        "{bursts} bursts per line, {PAUSE:?} pause after each; median ns per record over bursts"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>12} {:>16} {:>8}",
        "burst", "none", "spin", "sleep", "sleep-spin", "wakeups (sleep)", "ratio"
    );
    for b in [1u64, 16, 256, 4096] {
        let (none, _) = run(Mode::None, b, bursts);
        let (spin, _) = run(Mode::Spin, b, bursts);
        let (sleep, wakeups) = run(Mode::Sleep, b, bursts);
        println!(
            "{b:>6} {none:>10.1} {spin:>10.1} {sleep:>10.1} {:>12.1} {wakeups:>16} {:>8.2}",
            sleep - spin,
            sleep / spin
        );
    }
}
