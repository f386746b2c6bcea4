//! The reader loop: poll the rings into chunks, hand them to every sink's
//! queue, commit what every sink is done with, reload on request, drain and
//! flush on shutdown.
//!
//! # Rings
//! A collector reads one ring ([`Collector::new`]) or every ring of a
//! directory ([`Collector::new_dir`], `--ring-dir`: see `ring_dir.rs`), found
//! at start and while it runs. Each ring read is a *source*: its consumer
//! role, its resource resolver, its commit cursor and each sink's slot in it.
//! The sinks are shared: a chunk comes from one source and says which
//! ([`Chunk::source`]), so that its records are committed, and marked done by
//! each sink, in their own ring. Sources are polled in turn; when none has
//! anything, the reader sleeps on all of them at once
//! ([`logbus_ring::wait_any`]). A ring whose path comes to name another file
//! (or none) is read until it is drained and no process writes it any more
//! (none holds a writer's liveness lock on it: producers let go of the old
//! file when they follow the path), then let go; one truncated under the
//! collector is let go at once. A collector of one ring follows its path: the
//! ring found there next is read from then on (while the old one drains).
//! It keeps each ring it reads reachable under a second name while the ring
//! may hold unread records, so that a collector killed while an old ring
//! drains leaves it to the next one (`pin.rs`).
//!
//! # A thread's order across a replacement
//! A producer thread writes into the old ring until it follows the path, then
//! into the new one: each of its records in the old ring is complete (stamped)
//! before its first one in the new ring is. The reader keeps that order with
//! one rule: records read from a ring are handed to the sinks only once every
//! older ring of the same path (one being left, read before it) has been seen
//! *settled* (nothing unread, no record reserved but incomplete, no records
//! held back) *after* they were read. Then every record the thread put into
//! an older ring before them was read already, and handed out first (rings
//! being left are polled first, and their records are never held back). Until
//! then the records wait, one chunk per ring ([`Held`]), and that ring is not
//! read further. They are handed out anyway when the unsettled older rings
//! have yielded no record for [`ORDER_WAIT`] (a writer stopped in the
//! middle of a record in the old ring: SIGSTOP), or after [`ORDER_CAP`]
//! however the old rings progress (a writer that never follows the path),
//! so that the new ring is delayed boundedly (that thread's order can then
//! break; said nowhere but in this comment and `docs/RELIABILITY.md`). A
//! slow drain (a loaded machine, a full old ring) keeps the order: the wait
//! counts from the old rings' last record read, not from the hold. This is simpler than
//! merging by a per-thread sequence, which records do not carry, and costs
//! nothing while no ring is being left.
//!
//! # Commit rule
//! Chunks get increasing ids. Each sink reports the oldest chunk it still
//! holds ([`SinkQueue::pin`]); chunks older than every sink's pin are finished
//! everywhere (written, or dropped and counted under a sink's policy), so the
//! reader commits their records, each in its ring. A collector killed at any
//! point therefore resumes, on restart, at records some sink may have written
//! but none has lost.
//!
//! # Who does what
//! Everything here runs on one thread, the reader: the one that creates the
//! [`Collector`] and calls [`Collector::run`]. Each sink writes on a thread
//! of its own (`sink/`), fed through its queue (`queue.rs`), and unparks or
//! wakes the reader when it finishes a group; the binary's signal thread
//! only sets [`Control`]'s flags and wakes the reader. The files:
//! * `mod.rs`: the [`Collector`], its constructors, the loop
//!   ([`Collector::run`]) with its housekeeping and its sleep on the rings,
//!   reload, shutdown and the status file.
//! * `control.rs`: [`Control`] (requests from other threads), [`StartError`],
//!   [`Summary`], [`Unflushed`].
//! * `source.rs`: one ring read (a source) and each sink's place in it; the
//!   lines about its repairs; what a sink finished before a restart.
//! * `rings.rs`: which rings are read: added, pinned, adopted from pins,
//!   found in the ring directory, followed at the path, let go.
//! * `reader.rs`: polling into chunks, the order rule, handing chunks to the
//!   sinks, formatting ahead, committing what every sink is done with.
//! * `sinks.rs`: the sinks' lifecycle: started, reaped, an output gone,
//!   drops reported.
//!
//! [`Chunk::source`]: crate::chunk::Chunk::source
//! [`Held`]: source::Held
//! [`ORDER_WAIT`]: reader::ORDER_WAIT
//! [`ORDER_CAP`]: reader::ORDER_CAP
//! [`SinkQueue::pin`]: crate::queue::SinkQueue::pin

mod control;
mod reader;
mod rings;
mod sinks;
mod source;

pub use control::{Control, StartError, Summary, Unflushed};
pub use reader::CHUNKS;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use logbus_ring::{Consumer, Ring, Waker};

use reader::Pending;
use sinks::SinkHandle;
use source::{report_repairs, Leaving, Source};

use crate::chunk::Chunk;
use crate::config::{self, Config};
use crate::notice::{Notice, Notify};
use crate::ring_dir::RingDir;
use crate::stats::{status_path, write_atomic, Registry};

/// Idle polls that only yield before the reader sleeps on the ring's futex.
const SPIN_POLLS: u32 = 50;

/// Longest sleep while every sink is behind (sinks unpark the reader sooner).
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(50);

/// Longest sleep on the rings' futexes while idle: producers wake the reader
/// when they write; this bounds only the status file's and the resource
/// table's refresh, and how soon a ring directory's new rings are seen.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// How often a collector of one ring looks whether its path still names it.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// The collector: owns its rings' consumer roles and the sinks.
pub struct Collector {
    sources: Vec<Source>,
    /// The ring directory, with `--ring-dir`.
    dir: Option<RingDir>,
    /// The ring path, for a collector of one ring: followed when it comes to
    /// name another ring.
    follow: Option<PathBuf>,
    /// The last reason the path could not be followed (said once).
    follow_said: Option<String>,
    next_source: u32,
    /// Which source polls first next time (they take turns).
    turn: usize,
    waker: Waker,
    config: Config,
    config_path: Option<PathBuf>,
    sinks: Vec<SinkHandle>,
    retiring: Vec<SinkHandle>,
    pending: VecDeque<Pending>,
    /// Chunks to reuse (their buffers are as large as a poll needs).
    pool: Vec<Chunk>,
    /// Committed chunks a sink thread may still hold (it drops its job just
    /// after finishing it): taken back into `pool` once they are not.
    returning: Vec<Arc<Chunk>>,
    next_id: u64,
    registry: Arc<Registry>,
    status_file: PathBuf,
    reader: Thread,
    /// Where notices go (see [`Notice`]).
    notify: Notify,
    /// Per sink name: drops already reported, and when.
    drops_reported: HashMap<String, (u64, Option<Instant>)>,
    /// The rings read, for the metrics endpoint (see [`Collector::rings`]).
    rings: Arc<std::sync::Mutex<Vec<Ring>>>,
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
        let mut c = Collector::empty(status_path(ring.path()), config_path, notify);
        c.follow = Some(ring.path().to_path_buf());
        c.add_source(ring.clone()).map_err(StartError::Consumer)?;
        c.pin_newest();
        c.adopt_pins();
        c.start(config)?;
        Ok(c)
    }

    /// Reads every ring of the directory `dir`, those there now and those
    /// created while it runs, each owned by the user whose processes write it
    /// (see `ring_dir.rs`); each record's `uid` is its ring's owner. Otherwise
    /// as [`Collector::new`]; the status file is `dir/.collector.json`.
    ///
    /// # Errors
    /// [`StartError::RingDir`] when `dir` is not a directory, or one that lets
    /// a user replace another's ring; [`StartError::Sink`] as for `new`.
    pub fn new_dir(
        dir: &Path,
        config: Config,
        config_path: Option<PathBuf>,
        notify: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Result<Collector, StartError> {
        let ring_dir = RingDir::open(dir).map_err(StartError::RingDir)?;
        let status_file = crate::status::dir_status_path(dir);
        let mut c = Collector::empty(status_file, config_path, notify);
        c.dir = Some(ring_dir);
        c.start(config)?;
        c.scan_dir();
        Ok(c)
    }

    fn empty(
        status_file: PathBuf,
        config_path: Option<PathBuf>,
        notify: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Collector {
        Collector {
            sources: Vec::new(),
            dir: None,
            follow: None,
            follow_said: None,
            next_source: 0,
            turn: 0,
            waker: Waker::new(),
            config_path,
            sinks: Vec::new(),
            retiring: Vec::new(),
            pending: VecDeque::new(),
            pool: Vec::new(),
            returning: Vec::new(),
            next_id: 1,
            registry: Arc::new(Registry::default()),
            status_file,
            reader: std::thread::current(),
            notify: Arc::new(notify),
            drops_reported: HashMap::new(),
            config: Config {
                sinks: Vec::new(),
                ..Config::default()
            },
            rings: Arc::default(),
        }
    }

    /// Starts the sinks of `config` and places them in the rings read.
    fn start(&mut self, config: Config) -> Result<(), StartError> {
        self.config = Config {
            sinks: Vec::new(),
            ..config.clone()
        };
        self.sinks = self.start_sinks(&config.sinks, &mut Vec::new())?;
        self.config = config;
        let names: Vec<&str> = self.config.sinks.iter().map(|s| s.name.as_str()).collect();
        for src in &mut self.sources {
            src.place_sinks(&names);
        }
        self.registry
            .set(self.sinks.iter().map(|s| s.queue.stats.clone()).collect());
        self.count_lost_in_crash();
        self.write_status();
        self.settle_ledgers();
        Ok(())
    }

    /// The counters of the current sinks (for a metrics endpoint).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The status file written once a second (removed on clean exit).
    pub fn status_file(&self) -> &Path {
        &self.status_file
    }

    /// Runs until [`Control::request_shutdown`]; then reads what is published,
    /// flushes every sink (bounded by the configured shutdown timeout), commits
    /// and returns.
    pub fn run(&mut self, control: &Control) -> Summary {
        let _ = control.reader.set(std::thread::current());
        let _ = control.waker.set(self.waker.clone());
        let mut idle = 0u32;
        let mut clocks = Clocks {
            second: Instant::now(),
            housekeeping: Instant::now(),
            follow: Instant::now(),
        };
        loop {
            // Acquire pairs with `request_reload`.
            if control.reload.swap(false, Ordering::Acquire) {
                self.reload();
            }
            if control.shutdown_requested() || self.output_gone() {
                return self.shutdown();
            }
            // Committed first: the chunks the sinks are done with go back
            // to the pool before the poll needs one (see `reader::CHUNKS`).
            self.commit_finished();
            let polled = self.poll_once();
            let got = polled.unwrap_or(0);
            self.housekeeping(&mut clocks);
            if got == 0 && self.format_ahead() {
                continue;
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
                    self.sleep_on_rings();
                }
            }
        }
    }

    /// The reader's periodic work: every 50 ms, retired sinks reaped,
    /// resources refreshed, repairs reported, rings left behind dropped (and
    /// a followed directory scanned every `FOLLOW_EVERY`); every second, the
    /// directory scanned, the status file written and drops reported.
    fn housekeeping(&mut self, clocks: &mut Clocks) {
        let now = Instant::now();
        if now.duration_since(clocks.housekeeping) >= Duration::from_millis(50) {
            clocks.housekeeping = now;
            self.reap_retired();
            // Often enough to learn a short-lived producer's resource before
            // its table entry can go to another process.
            for src in &mut self.sources {
                src.resolver.refresh();
                report_repairs(src, &self.notify, now);
            }
            self.drop_left();
            if self.follow.is_some() && now.duration_since(clocks.follow) >= FOLLOW_EVERY {
                clocks.follow = now;
                self.scan_dir();
            }
        }
        if now.duration_since(clocks.second) >= Duration::from_secs(1) {
            clocks.second = now;
            if self.dir.is_some() {
                self.scan_dir();
            }
            self.write_status();
            self.settle_ledgers();
            self.report_drops(now);
        }
    }

    /// Sleeps on the rings' futexes: the next record wakes us (its producer
    /// sees we sleep), and so do signals (`Control`) and sinks. No timer
    /// polling; the timeout only paces the once-a-second housekeeping.
    fn sleep_on_rings(&self) {
        let consumers: Vec<&Consumer> = self
            .sources
            .iter()
            .filter(|s| s.leaving != Some(Leaving::Truncated))
            .take(logbus_ring::WAIT_ANY_RINGS)
            .map(|s| &s.consumer)
            .collect();
        // A replaced ring drained but still held by a writer
        // wakes us when written to; the others are let go soon.
        let timeout = if self.sources.iter().any(|s| match s.leaving {
            None => false,
            Some(Leaving::Replaced) => !s.consumer.is_drained(),
            Some(Leaving::Truncated) => true,
        }) || (self.follow.is_some()
            && self.sources.iter().all(|s| s.leaving.is_some()))
        {
            MAX_IDLE_SLEEP
        } else {
            IDLE_WAIT
        };
        logbus_ring::wait_any(&consumers, &self.waker, timeout);
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
        if new.ring_path != self.config.ring_path || new.ring_dir != self.config.ring_dir {
            (self.notify)(Notice::RingPathIgnored);
        }
        // Everything polled so far went to the old sinks; everything polled from
        // now on goes to the new ones: each record is handled by exactly one set.
        let mut old = std::mem::take(&mut self.sinks);
        match self.start_sinks(&new.sinks, &mut old) {
            Ok(sinks) => {
                self.sinks = sinks;
                let names: Vec<&str> = new.sinks.iter().map(|s| s.name.as_str()).collect();
                for src in &mut self.sources {
                    src.place_sinks(&names);
                }
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
            self.commit_finished();
            match self.poll_once() {
                Some(0) => break,
                Some(_) => {}
                None => std::thread::park_timeout(Duration::from_millis(10)),
            }
        }
        self.commit_finished();
        self.release_held();
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
        let unflushed: Vec<Unflushed> = self
            .sinks
            .iter()
            .chain(&self.retiring)
            .filter(|s| !s.queue.is_finished())
            .map(|s| {
                let (lost, in_ring) = s.queue.count_lost_at_exit();
                Unflushed {
                    name: s.config.name.clone(),
                    in_ring,
                    lost,
                }
            })
            .collect();
        if unflushed.is_empty() && self.pending.is_empty() {
            // Trailing padding and garbage claimed with the last records.
            for src in &mut self.sources {
                if src.leaving != Some(Leaving::Truncated) {
                    src.consumer.commit_all();
                }
                // The path reaches the current ring; a ring being left keeps
                // its pin until one collector lets it go.
                if let (None, Some(pin)) = (src.leaving, &src.pin) {
                    crate::pin::unpin(pin, src.ring.file_id());
                }
            }
            for s in self.sinks.iter_mut().chain(self.retiring.iter_mut()) {
                if let Some(t) = s.thread.take() {
                    let _ = t.join();
                }
            }
        }
        // What is counted now goes with this exit (its last line, the last
        // status file a supervisor read): off the ledgers.
        self.settle_ledgers();
        let _ = std::fs::remove_file(&self.status_file);
        Summary { unflushed }
    }
}

/// When the reader last did each part of its housekeeping.
struct Clocks {
    second: Instant,
    housekeeping: Instant,
    follow: Instant,
}
