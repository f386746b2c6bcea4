//! A sink's thread: takes groups of jobs from its [`SinkQueue`], hands them
//! to its [`Output`], and on an error retries the same group, for as long as
//! it takes, with backoff (100 ms doubling to 5 s, each wait drawn at random
//! between half and all of it, so that sinks failing together do not retry
//! in step), reporting the errors at most one line per sink per 10 s. A
//! finished group marks the rings' blocks for this sink, and the reader is
//! woken so that it commits promptly.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::notice::{Notice, Notify};
use crate::queue::{Job, SinkQueue, Take};
use crate::sink::{Output, WriteOutcome};
use crate::stats::SinkStats;
use logbus_ring::LEVELS;

/// Rate-limits a sink's error notices: at most one per 10 s, with a count.
struct Reporter {
    name: String,
    last: Option<Instant>,
    suppressed: u64,
    notify: Notify,
    /// Since when its writes fail, and how many did (`None`: it is writing).
    failing: Option<(Instant, u64)>,
}

const REPORT_EVERY: Duration = Duration::from_secs(10);

impl Reporter {
    fn error(&mut self, what: &str) {
        self.report(what, "retrying");
    }

    /// A write succeeded: if writes had failed, say that it writes again.
    fn recovered(&mut self) {
        if let Some((since, failures)) = self.failing.take() {
            (self.notify)(Notice::SinkRecovered {
                sink: self.name.clone(),
                failures,
                after: since.elapsed(),
            });
            // The next failure is reported at once.
            self.last = None;
            self.suppressed = 0;
        }
    }

    fn report(&mut self, what: &str, next: &'static str) {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < REPORT_EVERY => self.suppressed += 1,
            _ => {
                (self.notify)(Notice::SinkFailed {
                    sink: self.name.clone(),
                    error: what.to_string(),
                    suppressed: self.suppressed,
                    next,
                });
                self.last = Some(now);
                self.suppressed = 0;
            }
        }
    }
}

/// How a sink thread tells the reader it finished a group (so that it
/// commits promptly): the reader may be parked (every sink behind) or asleep
/// on its rings' futexes (nothing new to read), so both are woken.
#[derive(Clone)]
pub struct Reader {
    /// The reader thread.
    pub thread: Thread,
    /// Ends the reader's sleep on its rings.
    pub waker: logbus_ring::Waker,
}

impl Reader {
    pub(crate) fn wake(&self) {
        self.thread.unpark();
        self.waker.wake();
    }
}

/// Starts the sink's thread. `predecessor`: the sink it replaces on a reload,
/// whose remaining records are written first (keeps a file's lines in order),
/// waited for at most `wait_predecessor`.
/// `reader` is woken whenever a group finishes, so that it commits promptly.
///
/// # Errors
/// When the thread cannot be spawned.
pub fn spawn(
    queue: Arc<SinkQueue>,
    mut output: Box<dyn Output>,
    predecessor: Option<Arc<SinkQueue>>,
    wait_predecessor: Duration,
    notify: Notify,
    reader: Reader,
) -> std::io::Result<JoinHandle<()>> {
    let name = queue.stats.name.clone();
    std::thread::Builder::new()
        .name(format!("sink-{name}"))
        .spawn(move || {
            if let Some(p) = predecessor {
                // A predecessor that cannot write keeps retrying in the
                // background; after a while this sink starts anyway.
                p.wait_finished(wait_predecessor);
            }
            run(&queue, &mut *output, notify, &reader);
            queue.set_finished();
            reader.wake();
        })
}

/// A small, fast pseudo-random number (xorshift seeded from the clock), for
/// backoff jitter.
fn jitter(max: Duration) -> Duration {
    let mut x = logbus_ring::now_ns() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let half = max / 2;
    half + Duration::from_nanos(x % (half.as_nanos().max(1) as u64))
}

fn run(queue: &SinkQueue, output: &mut dyn Output, notify: Notify, reader: &Reader) {
    let stats: &SinkStats = &queue.stats;
    let mut reporter = Reporter {
        name: stats.name.clone(),
        last: None,
        suppressed: 0,
        notify,
        failing: None,
    };
    let mut jobs: Vec<Job> = Vec::new();
    let group = output.group_records();
    loop {
        match queue.take(&mut jobs, group) {
            Take::Closed => return,
            Take::Reopen => {
                if let Err(e) = output.reopen() {
                    // Relaxed: a statistic.
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    reporter.error(&format!("cannot reopen: {e}"));
                }
            }
            Take::Jobs => write_group(queue, output, &mut jobs, &mut reporter, reader),
        }
    }
}

/// Writes one group, retrying with backoff until it is finished or given
/// up; `jobs` is left empty.
fn write_group(
    queue: &SinkQueue,
    output: &mut dyn Output,
    jobs: &mut Vec<Job>,
    reporter: &mut Reporter,
    reader: &Reader,
) {
    let stats: &SinkStats = &queue.stats;
    let mut backoff = Duration::from_millis(100);
    loop {
        stats.write_starts();
        let outcome = output.write(jobs);
        stats.write_ended();
        let (refused, partially_rejected, error) = match outcome {
            WriteOutcome::Written { partially_rejected } => (None, partially_rejected, None),
            WriteOutcome::Rejected {
                levels,
                last,
                partially_rejected,
            } => (Some((last, levels)), partially_rejected, None),
            WriteOutcome::RetryLater(e) => (None, 0, Some((e, false))),
            WriteOutcome::Closed(e) => (None, 0, Some((e, true))),
        };
        let Some((error, closed)) = error else {
            finished(queue, jobs, reporter, refused, partially_rejected);
            reader.wake();
            return;
        };
        // Relaxed: statistics.
        stats.errors.fetch_add(1, Ordering::Relaxed);
        stats.up.store(false, Ordering::Relaxed);
        reporter.failing.get_or_insert((Instant::now(), 0)).1 += 1;
        reporter.error(&error);
        if closed {
            queue.set_broken();
            reader.wake();
        }
        if queue.should_give_up() {
            output.discard();
            jobs.clear();
            queue.abandon();
            reader.wake();
            return;
        }
        std::thread::sleep(jitter(backoff));
        // Relaxed: a statistic.
        stats.retries.fetch_add(1, Ordering::Relaxed);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A group is finished: marks the rings, finishes it in the queue, and
/// counts what the destination refused (`refused`: for good, per level,
/// with the last refusal) or rejected of what it took.
fn finished(
    queue: &SinkQueue,
    jobs: &mut Vec<Job>,
    reporter: &mut Reporter,
    refused: Option<(String, [u64; LEVELS])>,
    partially_rejected: u64,
) {
    let stats: &SinkStats = &queue.stats;
    if refused.is_none() {
        // Relaxed (stats): statistics.
        stats.up.store(true, Ordering::Relaxed);
        reporter.recovered();
    }
    // Mark the rings before finishing, while these records still hold the
    // commit (their blocks cannot be reused).
    for job in jobs.iter() {
        if let Some(m) = &job.mark {
            for pos in &job.chunk.block_ends {
                m.slot.mark(&m.ring, *pos);
            }
        }
    }
    // Drop our references first, so that the reader can reuse the chunks.
    jobs.clear();
    // Refusals are counted before the group leaves the queue, whose rings'
    // ledgers give it up only once these counters are published (see
    // `ledger.rs`); the group leaves after the write returned, never before.
    // Relaxed: statistics.
    if let Some((_, levels)) = &refused {
        for (r, k) in stats.rejected.iter().zip(levels) {
            r.fetch_add(*k, Ordering::Relaxed);
        }
    }
    if partially_rejected > 0 {
        stats
            .partially_rejected
            .fetch_add(partially_rejected, Ordering::Relaxed);
    }
    if refused.is_some() || partially_rejected > 0 {
        queue.finish_refused();
    } else {
        queue.finish();
    }
    if let Some((why, levels)) = refused {
        // Refused for good: counted rejected per level (above), not
        // delivered; the sink shows as down until a group gets through.
        // Relaxed: statistics.
        let n: u64 = levels.iter().sum();
        stats.errors.fetch_add(1, Ordering::Relaxed);
        stats.up.store(false, Ordering::Relaxed);
        stats.delivered.fetch_sub(n, Ordering::Relaxed);
        reporter.failing.get_or_insert((Instant::now(), 0)).1 += 1;
        reporter.report(&why, "records counted as rejected");
    }
    if partially_rejected > 0 {
        // Counted apart (the endpoint says how many, not which). Relaxed:
        // statistics.
        stats
            .delivered
            .fetch_sub(partially_rejected, Ordering::Relaxed);
        reporter.report(
            &format!("the endpoint rejected {partially_rejected} records of a group it took"),
            "counted as partially rejected",
        );
    }
}
