//! When each fault strikes: a seeded schedule of the next moment per kind.
//!
//! | fault | every (random in) | what |
//! |---|---|---|
//! | `producer-kill` | 0.3 - 1 s | SIGKILL a running producer (it is replaced) |
//! | `producer-stop` | 0.5 - 2 s | SIGSTOP a producer, SIGCONT it 50 - 800 ms later |
//! | `collector-kill` | 7 - 13 s | SIGKILL the collector, start the next one at once |
//! | `collector-hup` | 3 - 7 s | alternate the configuration (with / without a spare `null` sink), move the file sink's file aside, SIGHUP |
//!
//! (Without `collector-hup` the collector still gets a SIGHUP every 3 s with
//! its configuration unchanged: the file sink's output is read in segments,
//! `file_sink.rs`.)
//! | `disk-full` | 5 - 15 s | fill the file sink's tmpfs; free it 1 - 4 s later |
//! | `otlp-restart` | 6 - 15 s | stop the OTLP endpoint; serve again 0.5 - 3 s later |
//! | `stdout-pause` | 3 - 8 s | the stdout reader stops reading for 0.2 - 3 s |
//! | `ring-replace` | once, at 30 - 60 % of the run | delete the ring file and create it again |

use std::time::{Duration, Instant};

use super::rng::Rng;

/// The range of the pause before a fault strikes again, ms.
pub fn interval(fault: &str) -> (u64, u64) {
    match fault {
        "producer-kill" => (300, 1000),
        "producer-stop" => (500, 2000),
        "collector-kill" => (7000, 13000),
        "collector-hup" => (3000, 7000),
        "disk-full" => (5000, 15000),
        "otlp-restart" => (6000, 15000),
        "stdout-pause" => (3000, 8000),
        _ => (u64::MAX / 4, u64::MAX / 4),
    }
}

/// How long a fault that ends lasts, ms.
pub fn hold(fault: &str) -> (u64, u64) {
    match fault {
        "producer-stop" => (50, 800),
        "disk-full" => (1000, 4000),
        "otlp-restart" => (500, 3000),
        "stdout-pause" => (200, 3000),
        _ => (0, 0),
    }
}

/// The next moments of each fault.
pub struct Schedule {
    rng: Rng,
    next: Vec<(&'static str, Instant)>,
}

impl Schedule {
    /// A schedule of `faults` from `start`; `run` is the run's length (for
    /// the one ring replacement).
    pub fn new(seed: u64, faults: &[&'static str], start: Instant, run: Duration) -> Schedule {
        let mut rng = Rng::new(seed, 0xfa17);
        let next = faults
            .iter()
            .map(|f| {
                let at = if *f == "ring-replace" {
                    start + run.mul_f64(rng.range(30, 60) as f64 / 100.0)
                } else {
                    let (lo, hi) = interval(f);
                    start + Duration::from_millis(rng.range(lo, hi))
                };
                (*f, at)
            })
            .collect();
        Schedule { rng, next }
    }

    /// The faults due at `now`, each rescheduled (the ring replacement never again).
    pub fn due(&mut self, now: Instant) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (f, at) in &mut self.next {
            if *at <= now {
                out.push(*f);
                let (lo, hi) = interval(f);
                *at = now + Duration::from_millis(self.rng.range(lo, hi));
            }
        }
        out
    }

    /// How long the fault `f` that just struck lasts.
    pub fn hold(&mut self, f: &str) -> Duration {
        let (lo, hi) = hold(f);
        Duration::from_millis(self.rng.range(lo, hi))
    }

    /// The generator, for the faults' other choices (which producer).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}
