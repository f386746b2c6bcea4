//! The ring's emit path next to a `Mutex<BufWriter<File>>`: one thread, two
//! threads of one process, two processes; and the ring with eight threads of
//! one process (more writers than this machine's cores: writers are preempted
//! mid-record, and must not hold the others up).
//!
//! Every record: INFO, a 100-byte message, target `app::handler`, trace and
//! span ids, time read inside the call. The reported time is per record, for
//! the side named last in the benchmark id; `clock_only` is the clock read
//! alone, the floor under the ring. See `BENCHMARKS.md`. Per-call
//! percentiles (p99.9) are the `emit_tail` harness's
//! (`benches/src/bin/emit_tail.rs`): criterion reports means and medians of
//! samples of many calls.
//!
//! Run: `cargo bench -p logbus-benches --bench emit`.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use logbus_benches::{
    measure, Alone, ClockOnly, Competitor, MutexFileCompetitor, Peer, ProcessPeer, RingCompetitor,
    Side, ThreadPeer,
};

fn group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    // Flat: every sample has the same number of records, so every sample is
    // made of chunks of the same sizes.
    g.sampling_mode(SamplingMode::Flat);
    g
}

/// One thread emitting alone.
fn one_thread<C: Competitor>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, c: &C) {
    let mut w = c.emitter();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| measure(iters, c, &mut w, &mut Alone, Side::Me))
    });
}

/// Two threads emitting at once, each through its own emitter; reported once
/// for each thread (`a`: the measuring thread, `b`: its peer).
fn two_threads<C: Competitor>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, c: &C) {
    for (side, label) in [(Side::Me, "a"), (Side::Peer, "b")] {
        std::thread::scope(|s| {
            let mut peer = ThreadPeer::spawn(s, c);
            let mut w = c.emitter();
            contended(g, BenchmarkId::new(name, label), c, &mut w, &mut peer, side);
        });
    }
}

/// Several peer threads as one [`Peer`]: all start together; `finish` waits
/// for all of them and returns the mean of their emit times.
struct Peers<'scope>(Vec<ThreadPeer<'scope>>);

impl Peer for Peers<'_> {
    fn start(&mut self, n: u64) {
        for p in &mut self.0 {
            p.start(n);
        }
    }

    fn finish(&mut self) -> Duration {
        let total: Duration = self.0.iter_mut().map(|p| p.finish()).sum();
        total / self.0.len().max(1) as u32
    }
}

/// `threads` threads emitting at once, each through its own emitter; reported
/// for the measuring thread (`a`) and as the mean of the other threads' (`b`).
fn many_threads<C: Competitor>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    c: &C,
    threads: usize,
) {
    for (side, label) in [(Side::Me, "a"), (Side::Peer, "b_mean")] {
        std::thread::scope(|s| {
            let mut peers = Peers((1..threads).map(|_| ThreadPeer::spawn(s, c)).collect());
            let mut w = c.emitter();
            contended(
                g,
                BenchmarkId::new(name, label),
                c,
                &mut w,
                &mut peers,
                side,
            );
        });
    }
}

/// Two processes emitting into one ring at once; reported once for each.
fn two_processes(g: &mut BenchmarkGroup<'_, WallTime>, ring: &RingCompetitor) {
    for (side, label) in [(Side::Me, "parent"), (Side::Peer, "child")] {
        let mut peer = ProcessPeer::spawn(ring.path());
        let mut w = ring.emitter();
        contended(
            g,
            BenchmarkId::new("ring", label),
            ring,
            &mut w,
            &mut peer,
            side,
        );
    }
}

fn contended<C: Competitor, P: Peer>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    c: &C,
    w: &mut C::Emitter,
    peer: &mut P,
    side: Side,
) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| measure(iters, c, w, peer, side))
    });
}

fn emit(crit: &mut Criterion) {
    let ring = RingCompetitor::new();
    let file = MutexFileCompetitor::new();

    let mut g = group(crit, "emit_1_thread");
    one_thread(&mut g, "ring", &ring);
    one_thread(&mut g, "mutex_bufwriter", &file);
    one_thread(&mut g, "clock_only", &ClockOnly);
    g.finish();

    let mut g = group(crit, "emit_2_threads");
    two_threads(&mut g, "ring", &ring);
    two_threads(&mut g, "mutex_bufwriter", &file);
    g.finish();

    let mut g = group(crit, "emit_2_processes");
    two_processes(&mut g, &ring);
    g.finish();

    let mut g = group(crit, "emit_8_threads");
    many_threads(&mut g, "ring", &ring, 8);
    g.finish();

    ring.check_nothing_lost();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = emit
}

fn main() {
    // A peer process of `emit_2_processes` is this binary, re-executed.
    logbus_benches::run_child_if_asked();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
