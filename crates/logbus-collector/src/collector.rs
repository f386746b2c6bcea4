//! The reader loop: poll the ring into chunks, hand them to every sink's
//! queue, commit what every sink is done with, reload on request, drain and
//! flush on shutdown.
//!
//! # Commit rule
//! Chunks get increasing ids. Each sink reports the oldest chunk it still
//! holds ([`SinkQueue::pin`]); chunks older than every sink's pin are finished
//! everywhere (written, or dropped and counted under a sink's policy), so the
//! reader commits their records: per lane, up to the end of the chunk's last
//! record of that lane. A collector killed at any point therefore resumes, on
//! restart, at records some sink may have written but none has lost.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use logbus_ring::{Consumer, ConsumerError, Ring, SinkResume, SinkSlot, LEVELS};

use crate::chunk::{Chunk, Resolver};
use crate::config::{self, Config, SinkConfig};
use crate::notice::{Notice, Notify};
use crate::queue::{Job, SinkQueue};
use crate::sink::{self, SinkError};
use crate::stats::{status_path, write_atomic, Registry, SinkStats};

/// Most records claimed per poll.
const POLL_MAX: usize = 1 << 14;
/// At most one line about a sink's drops this often.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);
/// Fewest records worth a poll when the sinks are nearly full.
const MIN_POLL: usize = 64;
/// Chunks kept for reuse.
const POOL: usize = 8;
/// Idle polls that only yield before the reader sleeps on the ring's futex.
const SPIN_POLLS: u32 = 50;
/// Longest sleep while every sink is behind (sinks unpark the reader sooner).
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(50);
/// Longest sleep on the ring's futex while idle: producers wake the reader
/// when they write; this bounds only the status file's and the resource
/// table's refresh.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// For a sink that finished some records before a restart: which records of
/// `chunk` to skip (a bitmap and its counts per level), if any.
fn skip_done(chunk: &Chunk, resume: &SinkResume) -> Option<Arc<(Vec<u64>, [u32; LEVELS])>> {
    let mut bits = Vec::new();
    let mut counts = [0u32; LEVELS];
    for (i, r) in chunk.batch.iter().enumerate() {
        if resume.done(r.pos()) {
            if bits.is_empty() {
                bits = vec![0u64; chunk.batch.len().div_ceil(64)];
            }
            bits[i / 64] |= 1 << (i % 64);
            counts[r.level() as usize] += 1;
        }
    }
    (!bits.is_empty()).then(|| Arc::new((bits, counts)))
}

/// Requests from outside the reader loop (the binary's signal thread).
#[derive(Default)]
pub struct Control {
    shutdown: AtomicBool,
    reload: AtomicBool,
    reader: OnceLock<Thread>,
    /// The ring the reader may be sleeping on (its futex), to wake it.
    ring: OnceLock<Ring>,
}

impl Control {
    /// No requests yet.
    pub fn new() -> Control {
        Control::default()
    }

    /// Drain, flush, commit and return from [`Collector::run`].
    pub fn request_shutdown(&self) {
        // Release/Acquire: nothing is published with the flag; Relaxed would do,
        // Release costs nothing here and keeps reasoning simple.
        self.shutdown.store(true, Ordering::Release);
        self.wake();
    }

    /// Re-read the configuration file and reopen files, at the next loop turn.
    pub fn request_reload(&self) {
        // Release pairs with the Acquire swap in the reader loop.
        self.reload.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        if let Some(t) = self.reader.get() {
            t.unpark();
        }
        if let Some(r) = self.ring.get() {
            r.wake_consumer();
        }
    }

    fn shutdown_requested(&self) -> bool {
        // Acquire pairs with `request_shutdown`.
        self.shutdown.load(Ordering::Acquire)
    }
}

/// Why the collector could not start.
#[derive(Debug)]
pub enum StartError {
    /// Another process holds the ring's consumer role (or the lock failed).
    Consumer(ConsumerError),
    /// A sink could not be set up.
    Sink(SinkError),
    /// A thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Consumer(e) => write!(f, "{e}"),
            StartError::Sink(e) => write!(f, "{e}"),
            StartError::Thread(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// What a finished run left behind.
#[derive(Debug, Default)]
pub struct Summary {
    /// Sinks that had not finished when the shutdown timeout passed, with the
    /// records each left behind; those still in the ring (uncommitted) are
    /// delivered by the next collector.
    pub unflushed: Vec<(String, u64)>,
}

struct SinkHandle {
    config: SinkConfig,
    queue: Arc<SinkQueue>,
    mask: u8,
    thread: Option<JoinHandle<()>>,
    /// What this sink finished before the collector started (records to skip
    /// for it when they are read again); emptied once they are past.
    resume: Option<SinkResume>,
}

/// A chunk handed to the sinks, not yet committed.
struct Pending {
    chunk: Arc<Chunk>,
}

/// The collector: owns the ring's consumer role and the sinks.
pub struct Collector {
    ring: Ring,
    consumer: Consumer,
    config: Config,
    config_path: Option<PathBuf>,
    sinks: Vec<SinkHandle>,
    retiring: Vec<SinkHandle>,
    pending: VecDeque<Pending>,
    pool: Vec<Chunk>,
    resolver: Resolver,
    next_id: u64,
    registry: Arc<Registry>,
    status_file: PathBuf,
    reader: Thread,
    /// What to commit once the pending chunks are done: the greatest end seen.
    commit_end: u64,
    /// Where notices go (see [`Notice`]).
    notify: Notify,
    /// Per sink name: drops already reported, and when.
    drops_reported: HashMap<String, (u64, Option<Instant>)>,
}

impl Collector {
    /// Takes the consumer role of `ring` and starts the sinks of `config`.
    /// `config_path` is re-read on [`Control::request_reload`]; `notify`
    /// gets every [`Notice`] (the library prints nothing). Must be called on
    /// the thread that then calls [`run`](Self::run).
    ///
    /// # Errors
    /// [`StartError::Consumer`] when another collector holds the ring (its pid
    /// is in the message), [`StartError::Sink`] when a sink cannot be set up.
    pub fn new(
        ring: &Ring,
        config: Config,
        config_path: Option<PathBuf>,
        notify: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Result<Collector, StartError> {
        let consumer = Consumer::acquire(ring).map_err(StartError::Consumer)?;
        let reader = std::thread::current();
        let mut c = Collector {
            ring: ring.clone(),
            consumer,
            config_path,
            sinks: Vec::new(),
            retiring: Vec::new(),
            pending: VecDeque::new(),
            pool: Vec::new(),
            resolver: Resolver::new(ring),
            next_id: 1,
            registry: Arc::new(Registry::default()),
            status_file: status_path(ring.path()),
            reader,
            commit_end: 0,
            notify: Arc::new(notify),
            drops_reported: HashMap::new(),
            config: Config {
                sinks: Vec::new(),
                ..config.clone()
            },
        };
        let names: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
        let slots = c.consumer.sink_slots(&names);
        c.sinks = c.start_sinks(&config.sinks, &mut Vec::new(), slots)?;
        c.config = config;
        c.registry
            .set(c.sinks.iter().map(|s| s.queue.stats.clone()).collect());
        c.write_status();
        Ok(c)
    }

    /// The counters of the current sinks (for a metrics endpoint).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The status file written once a second (removed on clean exit).
    pub fn status_file(&self) -> &Path {
        &self.status_file
    }

    /// `max_backlog` (a percentage of the ring) in blocks.
    fn backlog_blocks(&self, percent: u8) -> usize {
        (self.ring.geometry().blocks as usize * percent as usize / 100).max(1)
    }

    /// Starts sinks for `configs`; reuses (takes out of `old`) the running sink
    /// of identical configuration. On error, the sinks started so far are closed.
    fn start_sinks(
        &self,
        configs: &[SinkConfig],
        old: &mut Vec<SinkHandle>,
        mut slots: Vec<Option<(SinkSlot, SinkResume)>>,
    ) -> Result<Vec<SinkHandle>, StartError> {
        let mut out: Vec<SinkHandle> = Vec::new();
        let mut kept: Vec<usize> = Vec::new();
        let result = (|| {
            for (k, cfg) in configs.iter().enumerate() {
                let slot = slots.get_mut(k).and_then(Option::take);
                if let Some(i) = old.iter().position(|o| &o.config == cfg) {
                    kept.push(out.len());
                    let h = old.remove(i);
                    out.push(h);
                    continue;
                }
                let output = sink::open_output(cfg).map_err(StartError::Sink)?;
                let predecessor = old.iter().find(|o| o.config.name == cfg.name);
                // Counters carry over to a sink of the same name and type.
                let stats = predecessor
                    .filter(|p| p.queue.stats.kind == cfg.kind.type_name())
                    .map_or_else(
                        || Arc::new(SinkStats::new(&cfg.name, cfg.kind.type_name())),
                        |p| p.queue.stats.clone(),
                    );
                let queue = Arc::new(SinkQueue::new(
                    cfg.queue,
                    self.backlog_blocks(cfg.max_backlog),
                    stats,
                ));
                let (marks, resume) = match slot {
                    Some((slot, resume)) => (
                        Some(sink::Marks {
                            ring: self.ring.clone(),
                            slot,
                        }),
                        (!resume.is_empty()).then_some(resume),
                    ),
                    None => (None, None),
                };
                let thread = sink::spawn(
                    queue.clone(),
                    output,
                    predecessor.map(|p| p.queue.clone()),
                    self.config.shutdown_timeout,
                    marks,
                    self.notify.clone(),
                    sink::Reader {
                        thread: self.reader.clone(),
                        ring: self.ring.clone(),
                    },
                )
                .map_err(StartError::Thread)?;
                out.push(SinkHandle {
                    mask: cfg.level_mask(),
                    config: cfg.clone(),
                    queue,
                    thread: Some(thread),
                    resume,
                });
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                // Give the kept ones back; close the new ones (they hold nothing).
                for (i, h) in out.into_iter().enumerate() {
                    if kept.contains(&i) {
                        old.push(h);
                    } else {
                        h.queue.close();
                    }
                }
                Err(e)
            }
        }
    }

    /// Runs until [`Control::request_shutdown`]; then reads what is published,
    /// flushes every sink (bounded by the configured shutdown timeout), commits
    /// and returns.
    pub fn run(&mut self, control: &Control) -> Summary {
        let _ = control.reader.set(std::thread::current());
        let _ = control.ring.set(self.ring.clone());
        let mut idle = 0u32;
        let mut last_second = Instant::now();
        let mut last_housekeeping = Instant::now();
        loop {
            // Acquire pairs with `request_reload`.
            if control.reload.swap(false, Ordering::Acquire) {
                self.reload();
            }
            if control.shutdown_requested() || self.output_gone() {
                return self.shutdown();
            }
            let polled = self.poll_once();
            let got = polled.unwrap_or(0);
            self.commit_finished();
            let now = Instant::now();
            if now.duration_since(last_housekeeping) >= Duration::from_millis(50) {
                last_housekeeping = now;
                self.reap_retired();
                // Often enough to learn a short-lived producer's resource before
                // its table entry can go to another process.
                self.resolver.refresh();
            }
            if now.duration_since(last_second) >= Duration::from_secs(1) {
                last_second = now;
                if got == 0 {
                    self.consumer.reap_dead_lanes();
                }
                self.write_status();
                self.report_drops(now);
            }
            if polled.is_none() {
                // Every sink is behind: wait for one to finish a group (it
                // unparks us), without spinning.
                std::thread::park_timeout(MAX_IDLE_SLEEP);
            } else if got > 0 {
                idle = 0;
            } else {
                idle = idle.saturating_add(1);
                if idle < SPIN_POLLS {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                } else {
                    // Sleep on the ring's futex: the next record wakes us
                    // (its producer sees we sleep), and so do signals
                    // (`Control`). No timer polling; the timeout only paces
                    // the once-a-second housekeeping above.
                    self.consumer.wait(Some(IDLE_WAIT));
                }
            }
        }
    }

    /// Polls one batch and hands it to the sinks. Returns the records polled.
    ///
    /// Reads no more than the roomiest sink queue can take: when every sink is
    /// behind, records stay in the ring (whose own overflow policy then
    /// applies, protecting WARN and above) instead of being copied out only to
    /// be dropped. A sink slower than the others still drops (and counts) its
    /// own records, so that it delays no other sink.
    /// `None` when no sink has room.
    fn poll_once(&mut self) -> Option<usize> {
        let room = self
            .sinks
            .iter()
            .map(|s| s.queue.room())
            .max()
            .unwrap_or(usize::MAX);
        if room < MIN_POLL {
            return None;
        }
        if self.ring.faulted() {
            // The file was shrunk under us: what is left reads as zeros.
            return Some(0);
        }
        let max = POLL_MAX.min(room);
        let mut chunk = self.pool.pop().unwrap_or_default();
        let n = self.consumer.poll(&mut chunk.batch, max);
        if n == 0 {
            self.pool.push(chunk);
            return Some(0);
        }
        let id = self.next_id;
        self.next_id += 1;
        chunk.resolve(id, &mut self.resolver);
        let chunk = Arc::new(chunk);
        for s in &mut self.sinks {
            let mut job = Job::new(chunk.clone(), s.mask);
            if let Some(resume) = &s.resume {
                job.skip = skip_done(&chunk, resume);
                if chunk
                    .block_ends
                    .first()
                    .is_some_and(|p| p.seq > resume.max_seq())
                {
                    s.resume = None; // read past everything it had finished
                }
            }
            s.queue.push(job);
        }
        self.pending.push_back(Pending { chunk });
        Some(n)
    }

    /// The oldest chunk some sink still holds.
    fn pin(&self) -> Option<u64> {
        self.sinks
            .iter()
            .chain(&self.retiring)
            .filter_map(|s| s.queue.pin())
            .min()
    }

    /// Commits the chunks every sink is done with.
    fn commit_finished(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pin = self.pin();
        let mut any = false;
        while let Some(p) = self.pending.front() {
            if pin.is_some_and(|pin| p.chunk.id >= pin) {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.commit_end = self.commit_end.max(p.chunk.end);
            any = true;
            if let Ok(c) = Arc::try_unwrap(p.chunk) {
                if self.pool.len() < POOL {
                    self.pool.push(c);
                }
            }
        }
        if any {
            self.consumer.commit(self.commit_end);
        }
    }

    /// Whether a sink's output is gone for good (stdout closed): then the
    /// collector shuts down, like `logbus-collector | head` should.
    fn output_gone(&self) -> bool {
        match self.sinks.iter().find(|s| s.queue.is_broken()) {
            Some(s) => {
                (self.notify)(Notice::OutputClosed {
                    sink: s.config.name.clone(),
                });
                true
            }
            None => false,
        }
    }

    /// One stderr line per sink per 10 s when it dropped records meanwhile.
    fn report_drops(&mut self, now: Instant) {
        for s in &self.sinks {
            let stats = &s.queue.stats;
            let total = stats.dropped_total();
            let (seen, at) = self
                .drops_reported
                .entry(stats.name.clone())
                .or_insert((0, None));
            let due = at.is_none_or(|t| now.duration_since(t) >= DROP_REPORT_EVERY);
            if total > *seen && due {
                (self.notify)(Notice::SinkShed {
                    sink: stats.name.clone(),
                    now: total - *seen,
                    total,
                });
                (*seen, *at) = (total, Some(now));
            }
        }
    }

    fn reap_retired(&mut self) {
        self.retiring.retain_mut(|h| {
            if h.queue.is_finished() {
                if let Some(t) = h.thread.take() {
                    let _ = t.join();
                }
                false
            } else {
                true
            }
        });
    }

    fn write_status(&self) {
        let doc = self
            .registry
            .status_json(std::process::id(), logbus_ring::now_ns());
        if let Err(e) = write_atomic(&self.status_file, &doc) {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                (self.notify)(Notice::StatusUnwritable {
                    path: self.status_file.clone(),
                    error: e.to_string(),
                })
            });
        }
    }

    /// Re-reads the configuration; on success swaps the sinks (unchanged ones
    /// keep running), otherwise keeps the running ones. Files are reopened.
    fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            (self.notify)(Notice::ReopenOnly);
            for s in &self.sinks {
                s.queue.request_reopen();
            }
            return;
        };
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                (self.notify)(Notice::ReloadFailed {
                    error: e.to_string(),
                });
                return;
            }
        };
        if new.ring_path != self.config.ring_path {
            (self.notify)(Notice::RingPathIgnored);
        }
        // Everything polled so far went to the old sinks; everything polled from
        // now on goes to the new ones: each record is handled by exactly one set.
        let mut old = std::mem::take(&mut self.sinks);
        let names: Vec<&str> = new.sinks.iter().map(|s| s.name.as_str()).collect();
        let slots = self.consumer.sink_slots(&names);
        match self.start_sinks(&new.sinks, &mut old, slots) {
            Ok(sinks) => {
                self.sinks = sinks;
                for h in &self.sinks {
                    h.queue.request_reopen();
                }
                let (mut changed, mut kept) = (0, 0);
                for h in old {
                    h.queue.close();
                    self.retiring.push(h);
                    changed += 1;
                }
                kept += self.sinks.len();
                self.config = new;
                self.registry
                    .set(self.sinks.iter().map(|s| s.queue.stats.clone()).collect());
                (self.notify)(Notice::Reloaded {
                    path: path.clone(),
                    kept,
                    replaced: changed,
                });
            }
            Err(e) => {
                self.sinks = old;
                (self.notify)(Notice::ReloadFailed {
                    error: e.to_string(),
                });
            }
        }
    }

    fn shutdown(&mut self) -> Summary {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        // Read everything published so far (bounded: producers may go on).
        while Instant::now() < deadline {
            match self.poll_once() {
                Some(0) => break,
                Some(_) => {}
                None => std::thread::park_timeout(Duration::from_millis(10)),
            }
            self.commit_finished();
        }
        for s in self.sinks.iter().chain(&self.retiring) {
            s.queue.close();
        }
        loop {
            self.commit_finished();
            let all = self
                .sinks
                .iter()
                .chain(&self.retiring)
                .all(|s| s.queue.is_finished());
            if all || Instant::now() >= deadline {
                break;
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
        self.commit_finished();
        let unflushed: Vec<(String, u64)> = self
            .sinks
            .iter()
            .chain(&self.retiring)
            .filter(|s| !s.queue.is_finished())
            .map(|s| (s.config.name.clone(), s.queue.depth()))
            .collect();
        if unflushed.is_empty() && self.pending.is_empty() {
            // Trailing padding and garbage claimed with the last records.
            self.consumer.commit_all();
            for s in self.sinks.iter_mut().chain(self.retiring.iter_mut()) {
                if let Some(t) = s.thread.take() {
                    let _ = t.join();
                }
            }
        }
        let _ = std::fs::remove_file(&self.status_file);
        Summary { unflushed }
    }
}
