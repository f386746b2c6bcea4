//! Per-call latency: the time-stamp counter, percentiles of samples, and a
//! log-scale histogram whose complementary CDF the compare harness writes
//! for plotting.

use std::io::Write;
use std::time::{Duration, Instant};

/// The time-stamp counter (`rdtsc`); elsewhere, ns since the first call.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn ticks() -> u64 {
    // SAFETY: `rdtsc` has no preconditions (x86_64 always has it); it only
    // reads the time-stamp counter.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

/// The time-stamp counter (`rdtsc`); elsewhere, ns since the first call.
#[cfg(not(target_arch = "x86_64"))]
pub fn ticks() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Ticks per ns, measured against `Instant` over 200 ms.
pub fn ticks_per_ns() -> f64 {
    let (i0, t0) = (Instant::now(), ticks());
    std::thread::sleep(Duration::from_millis(200));
    let (i1, t1) = (Instant::now(), ticks());
    (t1 - t0) as f64 / (i1 - i0).as_nanos() as f64
}

/// One million empty timer pairs (`ticks(); ticks()`), sorted, in ticks: what
/// timing a call adds to its sample.
pub fn empty_pairs() -> Vec<u32> {
    let mut v: Vec<u32> = (0..1_000_000)
        .map(|_| {
            let t0 = ticks();
            let t1 = ticks();
            t1.saturating_sub(t0).min(u32::MAX as u64) as u32
        })
        .collect();
    v.sort_unstable();
    v
}

/// Percentile `p` (0-100) of sorted `v` (nearest rank); 0 for no samples.
pub fn percentile<T: Copy + Default>(v: &[T], p: f64) -> T {
    if v.is_empty() {
        return T::default();
    }
    let i = ((v.len() as f64 * p / 100.0).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Bins per factor of ten in [`LogHistogram`].
pub const BINS_PER_DECADE: usize = 100;
const DECADES: usize = 11; // 1 ns to 100 s

/// Counts of values (ns) in logarithmic bins, [`BINS_PER_DECADE`] per decade
/// from 1 ns to 100 s (below 1 ns: the first bin; above: the last).
#[derive(Clone, Debug)]
pub struct LogHistogram {
    counts: Vec<u64>,
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram {
            counts: vec![0; BINS_PER_DECADE * DECADES],
        }
    }
}

impl LogHistogram {
    /// Counts one value, in ns.
    pub fn add(&mut self, ns: f64) {
        let b = (ns.max(1.0).log10() * BINS_PER_DECADE as f64) as usize;
        let last = self.counts.len() - 1;
        self.counts[b.min(last)] += 1;
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Writes the complementary CDF as rows `label<TAB>ns<TAB>fraction`: the
    /// fraction of values above `ns`, at the upper edge of every bin that
    /// holds a value (and 1 at the lower edge of the first).
    pub fn write_ccdf(&self, out: &mut impl Write, label: &str) -> std::io::Result<()> {
        let total = self.total();
        let edge = |b: usize| 10f64.powf(b as f64 / BINS_PER_DECADE as f64);
        let mut above = total;
        let mut first = true;
        for (b, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if first {
                writeln!(out, "{label}\t{:.2}\t1", edge(b))?;
                first = false;
            }
            above -= c;
            writeln!(
                out,
                "{label}\t{:.2}\t{:.9}",
                edge(b + 1),
                above as f64 / total as f64
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_ccdf() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        let mut h = LogHistogram::default();
        for x in [10.0, 10.0, 100.0, 1000.0] {
            h.add(x);
        }
        let mut out = Vec::new();
        h.write_ccdf(&mut out, "x").unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 4, "{text}");
        assert!(rows[0].starts_with("x\t10.00\t1"), "{text}");
        assert!(rows[1].ends_with("\t0.500000000"), "{text}");
        assert!(rows[3].ends_with("\t0.000000000"), "{text}");
    }
}
