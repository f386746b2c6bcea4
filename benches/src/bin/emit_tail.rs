//! Per-call emit latency: every `emit` of the benchmark record (the one of
//! `benches/emit.rs`) timed on its own with the TSC, one sample per call, for
//! 1, 2 and 8 threads at once (8 threads on this 2-core machine: a writer is
//! preempted mid-record now and then, and must not hold the others up).
//!
//! Prints, per thread count, the percentiles of all threads' samples pooled
//! (p50, p90, p99, p99.9, p99.99, max), the mean, and the wall-clock time per
//! record of all threads together (from just before the barrier that starts
//! a chunk to the one that ends it, so it includes waking the threads). Figures include the timer itself (an empty
//! `rdtsc` pair, printed first).
//!
//! The ring and its draining are those of `benches/emit.rs`
//! ([`RingCompetitor`]): every thread emits chunks of at most
//! [`Competitor::chunk`] records, all threads wait at a barrier, the main
//! thread drains the ring (untimed), and so on. Before the timed pass, the
//! same threads emit untimed through the whole ring once (no timed call meets
//! a page not yet faulted in). The run ends by checking that nothing was
//! dropped, evicted or torn.
//!
//! This file uses only the API that the ring before the block design (commit
//! fcfca29) had as well, so the same file builds on both sides of a
//! before/after comparison.
//!
//! Run: `cargo run --release -p logbus-benches --bin emit_tail [-- RECORDS_PER_THREAD [THREADS...]]`
//! (default 1048576 records a thread; threads 1 2 8).

use std::sync::Barrier;
use std::time::Instant;

use logbus_benches::{fail, Competitor, Emit, RingCompetitor};

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` has no preconditions (x86_64 always has it); it only
    // reads the time-stamp counter.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Ticks per ns, measured against `Instant` over 200 ms.
fn ticks_per_ns() -> f64 {
    let (i0, t0) = (Instant::now(), ticks());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (i1, t1) = (Instant::now(), ticks());
    (t1 - t0) as f64 / (i1 - i0).as_nanos() as f64
}

/// Percentile `p` (0-100) of sorted `v`.
fn pct(v: &[u32], p: f64) -> u32 {
    let i = ((v.len() as f64 * p / 100.0).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

struct Summary {
    threads: usize,
    records: u64,
    wall_ns: f64,
    samples: Vec<u32>,
}

fn run(threads: usize, per_thread: u64) -> Summary {
    let ring = RingCompetitor::new();
    // First, untimed, enough records to use every page of the ring once
    // (about 210 bytes a record), so that no timed call pays a page fault.
    // The bench ring is 256 MiB on both sides of a comparison.
    let warm = ((256u64 << 20) / 200 / threads as u64).max(2 * ring.chunk());
    emit_all(&ring, threads, warm);
    emit_all(&ring, threads, per_thread)
}

/// `threads` threads each emitting `per_thread` records, each call timed.
fn emit_all(ring: &RingCompetitor, threads: usize, per_thread: u64) -> Summary {
    let chunk = ring.chunk();
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    let mut wall_ticks = 0u64;
    let mut samples: Vec<Vec<u32>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (start, end) = (&start, &end);
                s.spawn(move || {
                    let mut w = ring.emitter();
                    let mut v = Vec::with_capacity(per_thread as usize);
                    let mut left = per_thread;
                    while left > 0 {
                        let n = left.min(chunk);
                        start.wait();
                        for _ in 0..n {
                            let t0 = ticks();
                            w.emit_one();
                            let t1 = ticks();
                            v.push((t1 - t0).min(u32::MAX as u64) as u32);
                        }
                        end.wait();
                        left -= n;
                    }
                    v
                })
            })
            .collect();
        let mut left = per_thread;
        while left > 0 {
            let n = left.min(chunk);
            // Before the barrier: the writers start when it opens.
            let t0 = ticks();
            start.wait();
            end.wait();
            wall_ticks += ticks() - t0;
            ring.reset();
            left -= n;
        }
        for h in handles {
            samples.push(
                h.join()
                    .unwrap_or_else(|_| fail("a writer thread panicked")),
            );
        }
    });
    ring.check_nothing_lost();
    let mut all: Vec<u32> = samples.into_iter().flatten().collect();
    all.sort_unstable();
    Summary {
        threads,
        records: per_thread * threads as u64,
        wall_ns: wall_ticks as f64,
        samples: all,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let per_thread: u64 = args
        .next()
        .map(|a| a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}"))))
        .unwrap_or(1 << 20);
    let mut counts: Vec<usize> = args
        .map(|a| a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}"))))
        .collect();
    if counts.is_empty() {
        counts = vec![1, 2, 8];
    }
    let tpn = ticks_per_ns();
    let mut empty: Vec<u32> = (0..1_000_000)
        .map(|_| {
            let t0 = ticks();
            let t1 = ticks();
            (t1 - t0) as u32
        })
        .collect();
    empty.sort_unstable();
    let ns = |t: u32| t as f64 / tpn;
    println!(
        "tsc {:.3} GHz; empty rdtsc pair: p50 {:.1} ns, p99 {:.1} ns; {per_thread} records a thread",
        tpn,
        ns(pct(&empty, 50.0)),
        ns(pct(&empty, 99.0))
    );
    println!(
        "{:>7} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>8} {:>12}",
        "threads", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean", "wall/record"
    );
    for &t in &counts {
        let s = run(t, per_thread);
        let v = &s.samples;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / tpn;
        println!(
            "{:>7} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>10.1} {:>10.0} {:>8.1} {:>12.1}",
            s.threads,
            ns(pct(v, 50.0)),
            ns(pct(v, 90.0)),
            ns(pct(v, 99.0)),
            ns(pct(v, 99.9)),
            ns(pct(v, 99.99)),
            ns(*v.last().unwrap_or(&0)),
            mean,
            s.wall_ns / tpn / s.records as f64,
        );
    }
}
