//! Producer threads for the compare harness: any number of threads, each
//! with its own [`Emitter`], released at once by a barrier, every Nth call
//! timed with the TSC.

use std::path::Path;
use std::sync::Barrier;

use logbus_ring::monotonic_ns;

use crate::{fail, latency, procstat};

/// How many calls per timed one: `LOGBUS_COMPARE_EVERY` (1 times every
/// call), else `default`.
pub fn sample_every(default: u64) -> u64 {
    std::env::var("LOGBUS_COMPARE_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(default)
}

/// One thread's way of writing the benchmark record.
pub trait Emitter {
    /// Writes one record; false when it was lost (refused, dropped).
    fn emit(&mut self) -> bool;
    /// After the thread's last record (untimed, but before the end time).
    fn finish(&mut self) {}
}

/// What the producer threads did.
#[derive(Debug, Default)]
pub struct Driven {
    /// `monotonic_ns` when the threads were released.
    pub start_ns: u64,
    /// `monotonic_ns` when the last thread had finished.
    pub emitted_ns: u64,
    /// Calls that returned false.
    pub lost: u64,
    /// Minor page faults of the producer threads during their timed loops.
    pub faults: u64,
    /// Every `every`th call's duration, in TSC ticks, all threads.
    pub samples: Vec<u32>,
}

/// Runs `threads` threads, each with an emitter from `make`, emitting
/// `records` records in all. Each thread's first record is written before
/// the barrier (it makes the thread's writer); of the others, every `every`th
/// is timed alone.
pub fn drive<E: Emitter>(
    threads: usize,
    records: u64,
    every: u64,
    make: impl Fn() -> E + Sync,
) -> Driven {
    let go = Barrier::new(threads + 1);
    let (go, make) = (&go, &make);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let n = records / threads as u64 + u64::from(t < records % threads as u64);
                s.spawn(move || {
                    let mut e = make();
                    let mut lost = u64::from(n > 0 && !e.emit());
                    // Touched now, so that pushing a sample never faults.
                    let mut samples = vec![1u32; (n / every + 1) as usize];
                    samples.clear();
                    go.wait();
                    let faults = procstat::thread_minor_faults();
                    // A comparison, not a division, per call.
                    let mut next = every;
                    for i in 1..n {
                        let ok = if i == next {
                            next += every;
                            let t0 = latency::ticks();
                            let ok = e.emit();
                            let t1 = latency::ticks();
                            samples.push(t1.saturating_sub(t0).min(u32::MAX as u64) as u32);
                            ok
                        } else {
                            e.emit()
                        };
                        lost += u64::from(!ok);
                    }
                    let faults = procstat::thread_minor_faults() - faults;
                    e.finish();
                    (lost, faults, samples)
                })
            })
            .collect();
        go.wait();
        let mut d = Driven {
            start_ns: monotonic_ns(),
            ..Driven::default()
        };
        for h in handles {
            let (lost, faults, samples) = h
                .join()
                .unwrap_or_else(|_| fail("a producer thread panicked"));
            d.lost += lost;
            d.faults += faults;
            d.samples.extend(samples);
        }
        d.emitted_ns = monotonic_ns();
        d
    })
}

impl Driven {
    /// A producer process's report to the compare harness: the latency
    /// samples (ticks, u32 LE) into `samples`, and `@result START_NS DONE_NS
    /// LOST FAULTS PEAK_RSS_KIB` on standard output (`lost_after`: records
    /// lost after the threads returned, such as a lossy writer's drops).
    pub fn report(&self, lost_after: u64, samples: &Path) {
        let done_ns = monotonic_ns().max(self.emitted_ns);
        let bytes: Vec<u8> = self.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(samples, bytes).unwrap_or_else(|e| fail(e));
        println!(
            "@result {} {done_ns} {} {} {}",
            self.start_ns,
            self.lost + lost_after,
            self.faults,
            procstat::peak_rss_kib()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(u64);
    impl Emitter for Count {
        fn emit(&mut self) -> bool {
            self.0 += 1;
            self.0.is_multiple_of(2)
        }
    }

    #[test]
    fn every_record_once_and_every_nth_timed() {
        let d = drive(2, 101, 8, || Count(0));
        // 51 and 50 calls; the odd-numbered ones (26 + 25) are "lost".
        assert_eq!(d.lost, 51);
        // Calls 8, 16, ..., 48 of each thread (not the first, untimed one).
        assert_eq!(d.samples.len(), 12);
        assert!(d.emitted_ns >= d.start_ns);
    }
}
