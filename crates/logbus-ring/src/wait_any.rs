//! Sleeping on several rings at once: one reader thread that consumes many
//! rings (a collector's `--ring-dir`) sleeps until a producer of any of them
//! writes, or until a thread of its own process wakes it ([`Waker`]).
//!
//! # Protocol
//! Each ring's consumer futex word (`sleeping`) keeps the Dekker protocol of
//! [`Consumer::wait`] ("Waking the consumer" in `crate::block`): the reader
//! stores 1 into every ring's word (SeqCst), then looks at every ring; it
//! sleeps only when none has anything to read, with one `futex_waitv` on all
//! the words (each expected to be 1) and on the waker's word. A producer that
//! reserved after our store of 1 into its ring sees it and wakes that word;
//! one that reserved before is seen by our look. The [`Waker`]'s word is
//! reset to 0 before the looks and expected to be 0 in the wait: a wake in
//! between changes it and the wait returns at once.
//!
//! Kernels before 5.16 have no `futex_waitv`: then the reader naps on the
//! waker's word alone for at most [`FALLBACK_NAP`] and polls again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::consumer::IN_FLIGHT_WAIT;
use crate::futex::{self, WaitOn, WAIT_ANY_MAX};
use crate::Consumer;

/// Longest nap without `futex_waitv` (or with more rings than it takes).
pub const FALLBACK_NAP: Duration = Duration::from_millis(10);

/// Most consumers [`wait_any`] sleeps on at once (the kernel's limit, less
/// the waker's word).
pub const WAIT_ANY_RINGS: usize = WAIT_ANY_MAX - 1;

/// Wakes a thread sleeping in [`wait_any`] from another thread of the same
/// process (a sink that finished writing, a signal handler thread).
///
/// ```
/// let waker = logbus_ring::Waker::new();
/// waker.wake(); // the next `wait_any` with this waker returns at once
/// logbus_ring::wait_any(&[], &waker, std::time::Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Waker(Arc<AtomicU32>);

impl Waker {
    /// A waker nobody has woken yet.
    pub fn new() -> Waker {
        Waker::default()
    }

    /// Ends the current (or the next) [`wait_any`] with this waker.
    pub fn wake(&self) {
        // SeqCst: ordered with the sleeper's reset of the word (a swap) and its
        // futex's own check of the value; the swap sees 1 or the wait does.
        if self.0.swap(1, Ordering::SeqCst) == 0 {
            futex::wake(&self.0, i32::MAX);
        }
    }
}

/// Sleeps until something may be readable in one of `consumers`, the
/// `waker` is woken, or `timeout` passes (on `CLOCK_MONOTONIC`). Returns at
/// once when one of them already has something to read. Spurious returns are
/// possible: the caller polls and calls again.
pub fn wait_any(consumers: &[&Consumer], waker: &Waker, timeout: Duration) {
    // SeqCst: pairs with `Waker::wake` (see there).
    if waker.0.swap(0, Ordering::SeqCst) != 0 {
        return;
    }
    let mut work = false;
    let mut in_flight = false;
    for c in consumers {
        let (w, f) = c.begin_sleep();
        work |= w;
        in_flight |= f;
    }
    if !work {
        let t = if in_flight {
            timeout.min(IN_FLIGHT_WAIT)
        } else {
            timeout
        };
        let mut words: Vec<WaitOn<'_>> = Vec::with_capacity(consumers.len() + 1);
        words.push(WaitOn {
            word: &waker.0,
            expected: 0,
        });
        words.extend(consumers.iter().map(|c| WaitOn {
            word: c.sleep_word(),
            expected: 1,
        }));
        if !futex::wait_any(&words, t) {
            futex::wait(&waker.0, 0, Some(t.min(FALLBACK_NAP)));
        }
    }
    for c in consumers {
        c.end_sleep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Event, Ring, RingOptions};
    use logbus_testkit::TempDir;
    use std::time::Instant;

    fn ring(dir: &TempDir, name: &str) -> Ring {
        Ring::create(dir.path(name), &RingOptions::default()).unwrap()
    }

    #[test]
    #[cfg_attr(miri, ignore = "needs mapped rings and futexes")]
    fn a_write_to_any_of_several_rings_ends_the_wait() {
        let dir = TempDir::new("wait-any");
        let (a, b) = (ring(&dir, "a"), ring(&dir, "b"));
        let (ca, mut cb) = (
            Consumer::acquire(&a).unwrap(),
            Consumer::acquire(&b).unwrap(),
        );
        let waker = Waker::new();
        let start = Instant::now();
        let mut batch = Batch::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                b.writer().unwrap().emit(&Event::new(9, "to b")).unwrap();
            });
            // Until the write: it ends the wait long before the timeout.
            while cb.poll(&mut batch, 10) == 0 {
                wait_any(&[&ca, &cb], &waker, Duration::from_secs(30));
            }
        });
        assert_eq!(batch.get(0).unwrap().message(), "to b");
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    #[cfg_attr(miri, ignore = "needs mapped rings and futexes")]
    fn the_waker_ends_the_wait_even_when_woken_before_it() {
        let dir = TempDir::new("wait-any-waker");
        let a = ring(&dir, "a");
        let ca = Consumer::acquire(&a).unwrap();
        let waker = Waker::new();
        waker.wake();
        let start = Instant::now();
        wait_any(&[&ca], &waker, Duration::from_secs(30));
        let w = waker.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            w.wake();
        });
        wait_any(&[&ca], &waker, Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(20));
        t.join().unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "needs mapped rings and futexes")]
    fn a_record_already_there_returns_at_once() {
        let dir = TempDir::new("wait-any-ready");
        let a = ring(&dir, "a");
        let ca = Consumer::acquire(&a).unwrap();
        a.writer().unwrap().emit(&Event::new(9, "early")).unwrap();
        let start = Instant::now();
        wait_any(&[&ca], &Waker::new(), Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}
