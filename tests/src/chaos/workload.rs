//! What a producer thread writes, and how fast: random levels, message sizes
//! up to the largest a record may carry, and a pace that switches between
//! floods, a steady trickle and idle stretches. The Rust producer uses this
//! module; the C and Python producers (`tests/chaos/`) follow the same rules
//! with their own generators.

use std::time::Duration;

use super::rng::Rng;

/// Level weights, TRACE .. FATAL (percent).
const LEVEL_WEIGHTS: [u64; 6] = [15, 20, 30, 15, 15, 5];

/// A random level index (0 TRACE .. 5 FATAL), below `levels`.
pub fn level(rng: &mut Rng, levels: usize) -> usize {
    loop {
        let mut x = rng.range(0, 99);
        for (l, w) in LEVEL_WEIGHTS.iter().enumerate() {
            if x < *w {
                if l < levels {
                    return l;
                }
                break;
            }
            x -= w;
        }
    }
}

/// A random message length: mostly short, some long, a few up to `max`.
pub fn length(rng: &mut Rng, max: usize) -> usize {
    let max = max as u64;
    let n = match rng.range(0, 99) {
        0..=79 => rng.range(30, 200),
        80..=94 => rng.range(200, 2000),
        _ => rng.range(2000, max.max(2000)),
    };
    n.min(max) as usize
}

/// A stretch of a thread's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// This many records back to back.
    Flood(u64),
    /// This many records, with a pause after each.
    Steady(u64, Duration),
    /// No records for this long.
    Idle(Duration),
}

/// The next phase.
pub fn phase(rng: &mut Rng) -> Phase {
    match rng.range(0, 99) {
        0..=24 => Phase::Flood(rng.range(100, 1500)),
        25..=74 => Phase::Steady(
            rng.range(10, 300),
            Duration::from_micros(rng.range(500, 5000)),
        ),
        _ => Phase::Idle(Duration::from_millis(rng.range(50, 1200))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_lengths_stay_in_their_ranges_and_reach_their_ends() {
        let mut r = Rng::new(1, 1);
        let levels: Vec<usize> = (0..5000).map(|_| level(&mut r, 5)).collect();
        assert!(levels.iter().all(|l| *l < 5));
        assert!((0..5).all(|l| levels.contains(&l)));
        let lens: Vec<usize> = (0..5000).map(|_| length(&mut r, 16384)).collect();
        assert!(lens.iter().all(|n| (30..=16384).contains(n)));
        assert!(lens.iter().any(|n| *n > 12000));
    }
}
