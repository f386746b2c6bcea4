//! Sinks: where records go. Each sink runs on its own thread behind its own
//! [`SinkQueue`], so a slow or stuck sink delays no other.
//!
//! A sink is an [`Output`]: it is handed groups of jobs (chunks plus the
//! sink's level mask) and returns once they are written; on error the thread
//! retries the same group, for as long as it takes, with backoff (100 ms
//! doubling to 5 s, each wait drawn at random between half and all of it, so
//! that sinks failing together do not retry in step), and reports the errors
//! on stderr, at most one line per sink per 10 s. Files are opened by the
//! sink's thread on its first write, so an open that never returns (a FIFO
//! nobody reads) holds up that sink alone. Meanwhile its records wait in its
//! queue (see `crate::queue`: in the ring, then in memory).
//!
//! * `null`: discards, formatting nothing.
//! * `stdout`, `file`: [`lines`] (format each record as a JSON or text
//!   line with [`logbus_format`], write the group with one call).
//! * `otlp`: [`otlp`] (convert to OTLP records, export, wait for the acknowledgement).

pub mod lines;
pub mod otlp;
pub mod rotating;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::config::{SinkConfig, SinkKind};
use crate::notice::{Notice, Notify};
use crate::queue::{Job, SinkQueue, Take};
use crate::stats::SinkStats;
use logbus_ring::LEVELS;

/// Records a sink takes per write (byte sinks); bounds what a killed collector
/// delivers twice.
pub const GROUP_RECORDS: usize = 4096;

/// Where a sink writes.
pub trait Output: Send {
    /// Writes the records the jobs select. `Ok` means finished (written, or
    /// acknowledged). After an error the same jobs are passed again (the output
    /// may resume where it failed) or [`discard`](Self::discard)ed.
    fn write(&mut self, jobs: &[Job]) -> Result<(), String>;

    /// Reopens the destination (SIGHUP; log rotation by someone else).
    fn reopen(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Forgets a partly written group that is given up.
    fn discard(&mut self) {}

    /// Whether the destination is gone for good (stdout closed by its reader):
    /// the collector then shuts down.
    fn closed(&self) -> bool {
        false
    }

    /// Records of the groups written since the last call that the
    /// destination refused for good (OTLP: a permanent status), per level,
    /// with the last refusal: counted rejected, not delivered, and not sent
    /// again (the write that met them went on and returned `Ok`).
    fn take_refused(&mut self) -> Option<(String, [u64; LEVELS])> {
        None
    }

    /// Records of the groups written since the last call that the
    /// destination took but rejected (OTLP partial success).
    fn take_rejected(&mut self) -> u64 {
        0
    }

    /// Records to hand to one [`write`](Self::write).
    fn group_records(&self) -> usize {
        GROUP_RECORDS
    }
}

/// Why a sink could not be set up.
#[derive(Debug)]
pub struct SinkError {
    /// The sink.
    pub name: String,
    /// What went wrong.
    pub problem: String,
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sink \"{}\": {}", self.name, self.problem)
    }
}

impl std::error::Error for SinkError {}

/// Builds the output of a sink configuration (opens no file, connects nothing yet).
///
/// # Errors
/// A [`SinkError`] when a file cannot be opened or the exporter not made.
pub fn open_output(cfg: &SinkConfig) -> Result<Box<dyn Output>, SinkError> {
    let err = |problem: String| SinkError {
        name: cfg.name.clone(),
        problem,
    };
    Ok(match &cfg.kind {
        SinkKind::Stdout { format } => Box::new(lines::LineSink::stdout(*format)),
        SinkKind::Null => Box::new(lines::LineSink::null()),
        SinkKind::File {
            path,
            format,
            max_bytes,
            keep,
        } => {
            // Opened now if it can be (the open never waits): what another
            // user planted at the path is refused here, at start. A file that
            // cannot be opened for now (a FIFO with no reader yet, a missing
            // directory, a full disk) is opened by the sink's own thread,
            // which retries.
            let file = match rotating::RotatingFile::open(path, *max_bytes, *keep) {
                Ok(f) => f,
                Err(e) if e.starts_with("refusing") => return Err(err(e)),
                Err(_) => rotating::RotatingFile::lazy(path, *max_bytes, *keep),
            };
            Box::new(lines::LineSink::file(file, *format))
        }
        SinkKind::Otlp { .. } => Box::new(otlp::OtlpSink::new(cfg).map_err(err)?),
    })
}

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
                continue;
            }
            Take::Jobs => {}
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            stats.write_starts();
            let wrote = output.write(&jobs);
            stats.write_ended();
            match wrote {
                Ok(()) => {
                    let refused = output.take_refused();
                    if refused.is_none() {
                        // Relaxed (stats): statistics.
                        stats.up.store(true, Ordering::Relaxed);
                        reporter.recovered();
                    }
                    // Mark the rings before finishing, while these records
                    // still hold the commit (their blocks cannot be reused).
                    for job in &jobs {
                        if let Some(m) = &job.mark {
                            for pos in &job.chunk.block_ends {
                                m.slot.mark(&m.ring, *pos);
                            }
                        }
                    }
                    // Drop our references first, so that the reader can reuse the chunks.
                    jobs.clear();
                    queue.finish();
                    if let Some((why, levels)) = refused {
                        // Refused for good: counted rejected per level, not
                        // delivered; the sink shows as down until a group
                        // gets through. Relaxed: statistics.
                        let n: u64 = levels.iter().sum();
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        stats.up.store(false, Ordering::Relaxed);
                        for (r, k) in stats.rejected.iter().zip(levels) {
                            r.fetch_add(k, Ordering::Relaxed);
                        }
                        stats.delivered.fetch_sub(n, Ordering::Relaxed);
                        reporter.failing.get_or_insert((Instant::now(), 0)).1 += 1;
                        reporter.report(&why, "records counted as rejected");
                    }
                    let partial = output.take_rejected();
                    if partial > 0 {
                        // Counted apart (the endpoint says how many, not which).
                        // Relaxed: statistics.
                        stats
                            .partially_rejected
                            .fetch_add(partial, Ordering::Relaxed);
                        stats.delivered.fetch_sub(partial, Ordering::Relaxed);
                        reporter.report(
                            &format!("the endpoint rejected {partial} records of a group it took"),
                            "counted as partially rejected",
                        );
                    }
                    reader.wake();
                    break;
                }
                Err(e) => {
                    // Relaxed: statistics.
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    stats.up.store(false, Ordering::Relaxed);
                    reporter.failing.get_or_insert((Instant::now(), 0)).1 += 1;
                    reporter.error(&e);
                    if output.closed() {
                        queue.set_broken();
                        reader.wake();
                    }
                    if queue.should_give_up() {
                        output.discard();
                        jobs.clear();
                        queue.abandon();
                        reader.wake();
                        break;
                    }
                    std::thread::sleep(jitter(backoff));
                    // Relaxed: a statistic.
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
