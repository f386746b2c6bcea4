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
//! read further; after [`ORDER_WAIT`] they are handed out anyway, so that a
//! writer stopped in the middle of a record in the old ring (SIGSTOP) delays
//! the new one boundedly (that thread's order can then break; said nowhere
//! but in this comment and `docs/RELIABILITY.md`). This is simpler than
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

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use logbus_ring::{
    Consumer, ConsumerError, OpenError, Ring, SinkMarks, SinkResume, SinkSlot, Waker, LEVELS,
};

use crate::chunk::Chunk;
use crate::config::{self, Config, Format, SinkConfig};
use crate::notice::{Notice, Notify};
use crate::queue::{Job, Mark, SinkQueue};
use crate::resolver::Resolver;
use crate::ring_dir::RingDir;
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
/// Longest sleep on the rings' futexes while idle: producers wake the reader
/// when they write; this bounds only the status file's and the resource
/// table's refresh, and how soon a ring directory's new rings are seen.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// At most one line about a ring's repaired shared state this often.
const REPAIR_REPORT_EVERY: Duration = Duration::from_secs(10);
/// How often a collector of one ring looks whether its path still names it.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// Longest a ring's records wait for the older rings of its path to settle
/// (see "A thread's order across a replacement").
const ORDER_WAIT: Duration = Duration::from_secs(2);

/// At most one line per [`REPAIR_REPORT_EVERY`] per ring about impossible
/// shared state its consumer set right: the first repair since the last
/// line, and how many more there were.
fn report_repairs(src: &mut Source, notify: &Notify, now: Instant) {
    let repairs = src.consumer.take_repairs();
    let Some(first) = repairs.first() else {
        return;
    };
    if src
        .repairs_said
        .1
        .is_some_and(|at| now.duration_since(at) < REPAIR_REPORT_EVERY)
    {
        return;
    }
    let total = src.consumer.repaired_total();
    let more = total.saturating_sub(src.repairs_said.0).saturating_sub(1);
    src.repairs_said = (total, Some(now));
    notify(Notice::RingRepaired {
        path: src.ring.path().to_path_buf(),
        repair: first.to_string(),
        more,
    });
}

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
    /// Ends the reader's sleep on its rings' futexes.
    waker: OnceLock<Waker>,
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
        if let Some(w) = self.waker.get() {
            w.wake();
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
    /// The ring directory cannot be used (one line naming it and why).
    RingDir(String),
    /// A sink could not be set up.
    Sink(SinkError),
    /// A thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Consumer(e) => write!(f, "{e}"),
            StartError::RingDir(e) => write!(f, "{e}"),
            StartError::Sink(e) => write!(f, "{e}"),
            StartError::Thread(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// What a finished run left behind.
#[derive(Debug, Default)]
pub struct Summary {
    /// Sinks that had not finished when the shutdown timeout passed.
    pub unflushed: Vec<Unflushed>,
}

/// What one sink left unwritten when the shutdown timeout passed.
#[derive(Debug)]
pub struct Unflushed {
    /// The sink's name.
    pub name: String,
    /// Records still in the ring (uncommitted): the next collector delivers them.
    pub in_ring: u64,
    /// Records it held in memory only, per level (index: `Level as usize`):
    /// lost with this collector, and counted in the sink's `dropped`.
    pub lost: [u64; LEVELS],
}

struct SinkHandle {
    config: SinkConfig,
    queue: Arc<SinkQueue>,
    mask: u8,
    thread: Option<JoinHandle<()>>,
}

/// A sink's place in one ring.
struct SinkPlace {
    /// Where it marks its progress.
    slot: SinkSlot,
    /// What it finished before the collector started (records to skip for it
    /// when they are read again); emptied once they are past.
    resume: Option<SinkResume>,
}

/// Why a ring is being let go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaving {
    /// Its path names another file, or none: read it until it is drained and
    /// no process has a writer of it, then let go.
    Replaced,
    /// Shrunk under us: nothing more can be read.
    Truncated,
}

/// Records read from a ring and held back until the older rings of its path
/// settle (see "A thread's order across a replacement").
struct Held {
    chunk: Chunk,
    /// Records in it.
    n: usize,
    /// When it was read (it waits at most [`ORDER_WAIT`]).
    since: Instant,
}

/// One ring read (see "Rings" above).
struct Source {
    /// Unique for the collector's lifetime ([`Chunk::source`]); a ring found
    /// later has a greater key.
    key: u32,
    ring: Ring,
    /// The path the ring was found at: rings found at one path, one after
    /// another, keep each thread's order between them.
    origin: PathBuf,
    /// Its order among the rings of `origin`: greater is newer. A pinned ring
    /// a killed collector left (`pin.rs`) is older than every other.
    age: u32,
    /// Its pin (a collector of one ring), removed when the ring is let go.
    pin: Option<PathBuf>,
    /// Records read and not yet handed out (at most one chunk).
    held: Option<Held>,
    consumer: Consumer,
    resolver: Resolver,
    /// What to commit once its pending chunks are done: the greatest end seen.
    commit_end: u64,
    /// `commit_end` moved since the last commit.
    dirty: bool,
    /// Per sink name: its slot in this ring (none beyond the ring's slots).
    places: HashMap<String, SinkPlace>,
    leaving: Option<Leaving>,
    /// Repairs of impossible shared state said so far (see
    /// [`Consumer::take_repairs`]), and when the last line was.
    repairs_said: (u64, Option<Instant>),
}

impl Source {
    /// Gives each sink of `names` its slot in the ring, keeping the places of
    /// sinks it had.
    fn place_sinks(&mut self, names: &[&str]) {
        if names.is_empty() {
            // Sinks not started yet: `SinkMarks::assign` would free every slot, and
            // with them what each sink had finished before a restart.
            return;
        }
        let slots = SinkMarks::assign(&mut self.consumer, names);
        let mut places = HashMap::new();
        for (name, slot) in names.iter().zip(slots) {
            let place = match (self.places.remove(*name), slot) {
                (Some(p), _) => p,
                (None, Some((slot, resume))) => SinkPlace {
                    slot,
                    resume: (!resume.is_empty()).then_some(resume),
                },
                (None, None) => continue,
            };
            places.insert(name.to_string(), place);
        }
        self.places = places;
    }
}

/// A chunk handed to the sinks, not yet committed.
struct Pending {
    chunk: Arc<Chunk>,
}

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
        self.write_status();
        Ok(())
    }

    /// Takes the consumer role of `ring` and reads it from now on.
    fn add_source(&mut self, ring: Ring) -> Result<(), ConsumerError> {
        let consumer = Consumer::acquire(&ring)?;
        let key = self.next_source;
        self.next_source += 1;
        let mut src = Source {
            key,
            resolver: Resolver::new(&ring, key),
            origin: ring.path().to_path_buf(),
            age: key + 1,
            pin: None,
            held: None,
            ring,
            consumer,
            commit_end: 0,
            dirty: false,
            places: HashMap::new(),
            leaving: None,
            repairs_said: (0, None),
        };
        let names: Vec<&str> = self.config.sinks.iter().map(|s| s.name.as_str()).collect();
        src.place_sinks(&names);
        self.sources.push(src);
        self.publish_rings();
        Ok(())
    }

    /// Pins the ring just added (a collector of one ring; see `pin.rs`).
    /// A ring that cannot be pinned is read all the same: one line says why
    /// a collector killed while it is being replaced would strand its records.
    fn pin_newest(&mut self) {
        let (Some(path), Some(src)) = (self.follow.as_ref(), self.sources.last_mut()) else {
            return;
        };
        match crate::pin::pin(path, &src.ring) {
            Ok(pin) => src.pin = Some(pin),
            Err(e) => (self.notify)(Notice::PinFailed {
                path: path.clone(),
                error: e.to_string(),
            }),
        }
    }

    /// At start: reads every ring a killed collector left pinned beside the
    /// path (see `pin.rs`) as a ring being left: drained until no process
    /// writes it, then let go and unpinned. Its records go out before the
    /// current ring's.
    fn adopt_pins(&mut self) {
        let Some(path) = self.follow.clone() else {
            return;
        };
        for p in crate::pin::pins(&path) {
            if self.sources.iter().any(|s| s.pin.as_ref() == Some(&p)) {
                continue; // the current ring's own
            }
            let added = Ring::open_existing(&p)
                .map_err(|e| e.to_string())
                .and_then(|ring| self.add_source(ring).map_err(|e| e.to_string()));
            match added {
                Ok(()) => {
                    let src = self.sources.last_mut().expect("just added");
                    src.origin = path.clone();
                    src.age = 0;
                    src.pin = Some(p.clone());
                    src.leaving = Some(Leaving::Replaced);
                    (self.notify)(Notice::PinnedRingFound { pin: p });
                }
                Err(problem) => (self.notify)(Notice::PinRefused { pin: p, problem }),
            }
        }
    }

    fn publish_rings(&self) {
        *self.rings.lock().unwrap_or_else(|p| p.into_inner()) =
            self.sources.iter().map(|s| s.ring.clone()).collect();
    }

    /// The rings read now (updated as rings come and go), for a metrics
    /// endpoint.
    pub fn rings(&self) -> Arc<std::sync::Mutex<Vec<Ring>>> {
        self.rings.clone()
    }

    /// Looks for new rings in the ring directory, and at the health of those
    /// read: one replaced or removed is drained and let go, one truncated is
    /// let go.
    fn scan_dir(&mut self) {
        for src in &mut self.sources {
            if src.leaving.is_some() {
                continue;
            }
            let (leaving, why) = if src.ring.faulted() || src.ring.check_size().is_err() {
                (
                    Leaving::Truncated,
                    "the ring file was truncated under the collector; \
                     no longer read (records not yet read are lost)",
                )
            } else if !src.ring.is_current() {
                (
                    Leaving::Replaced,
                    "the path now names another file, or none; reading the old ring until it is \
                     drained and no process writes it any more, then letting it go",
                )
            } else {
                continue;
            };
            src.leaving = Some(leaving);
            (self.notify)(Notice::RingLeft {
                path: src.ring.path().to_path_buf(),
                why,
            });
        }
        self.follow_path();
        let Some(mut dir) = self.dir.take() else {
            return;
        };
        let read: Vec<(u64, u64)> = self.sources.iter().map(|s| s.ring.file_id()).collect();
        let notify = self.notify.clone();
        dir.scan(&read, &*notify, |ring| {
            self.add_source(ring).map_err(|e| e.to_string())
        });
        self.dir = Some(dir);
    }

    /// A collector of one ring whose ring is being left (or gone): reads the
    /// ring its path names now, once there is one.
    fn follow_path(&mut self) {
        let Some(path) = self.follow.clone() else {
            return;
        };
        if self.sources.iter().any(|s| s.leaving.is_none()) {
            return;
        }
        let problem = match Ring::open_existing(&path) {
            // The file being left (a truncated one still at the path): wait
            // for another.
            Ok(ring)
                if self
                    .sources
                    .iter()
                    .any(|s| s.ring.file_id() == ring.file_id()) =>
            {
                None
            }
            Ok(ring) => {
                let (blocks, block_size) = (ring.geometry().blocks, ring.geometry().block_size);
                match self.add_source(ring) {
                    Ok(()) => {
                        self.pin_newest();
                        self.follow_said = None;
                        (self.notify)(Notice::RingFollowed {
                            path: path.clone(),
                            blocks,
                            block_size,
                        });
                        None
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
            Err(OpenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            if self.follow_said.as_deref() != Some(problem.as_str()) {
                (self.notify)(Notice::FollowWaiting {
                    problem: problem.clone(),
                });
                self.follow_said = Some(problem);
            }
        }
    }

    /// Lets go of the rings being left once they are drained and committed
    /// (a replaced one: and no process has a writer of it any more).
    fn drop_left(&mut self) {
        let pending = &self.pending;
        let dir = &mut self.dir;
        let notify = &self.notify;
        let mut gone = false;
        self.sources.retain_mut(|src| {
            let done = match src.leaving {
                None => return true,
                Some(Leaving::Truncated) => true,
                // Drained first, then the locks: a writer that let go after
                // our look wrote nothing after it (it drops its writer, and
                // with it the lock, only once its last record is stamped),
                // so one more look would find it; the next turn looks again.
                Some(Leaving::Replaced) => {
                    src.consumer.is_drained()
                        && !src.ring.writers_alive()
                        && src.consumer.is_drained()
                }
            };
            let key = src.key;
            if !done || src.held.is_some() || pending.iter().any(|p| p.chunk.source == key) {
                return true;
            }
            if src.leaving == Some(Leaving::Replaced) {
                notify(Notice::RingLeft {
                    path: src.ring.path().to_path_buf(),
                    why: "the replaced ring is drained and no process writes it any more; let go",
                });
            }
            if let Some(pin) = &src.pin {
                crate::pin::unpin(pin, src.ring.file_id());
            }
            if src.leaving == Some(Leaving::Truncated) {
                if let Some(dir) = dir.as_mut() {
                    dir.let_go(src.ring.path(), src.ring.file_id());
                }
            }
            gone = true;
            false
        });
        if gone {
            self.publish_rings();
        }
    }

    /// The counters of the current sinks (for a metrics endpoint).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The status file written once a second (removed on clean exit).
    pub fn status_file(&self) -> &Path {
        &self.status_file
    }

    /// Starts sinks for `configs`; reuses (takes out of `old`) the running sink
    /// of identical configuration. On error, the sinks started so far are closed.
    fn start_sinks(
        &self,
        configs: &[SinkConfig],
        old: &mut Vec<SinkHandle>,
    ) -> Result<Vec<SinkHandle>, StartError> {
        let mut out: Vec<SinkHandle> = Vec::new();
        let mut kept: Vec<usize> = Vec::new();
        let result = (|| {
            for cfg in configs {
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
                let queue = Arc::new(SinkQueue::new(cfg.queue, stats));
                let thread = sink::spawn(
                    queue.clone(),
                    output,
                    predecessor.map(|p| p.queue.clone()),
                    self.config.shutdown_timeout,
                    self.notify.clone(),
                    sink::Reader {
                        thread: self.reader.clone(),
                        waker: self.waker.clone(),
                    },
                )
                .map_err(StartError::Thread)?;
                out.push(SinkHandle {
                    mask: cfg.level_mask(),
                    config: cfg.clone(),
                    queue,
                    thread: Some(thread),
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
            let polled = self.poll_once();
            let got = polled.unwrap_or(0);
            self.commit_finished();
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

    /// Polls each ring once (in turn, the first one changing every time) and
    /// hands what it read to the sinks. Returns the records polled.
    ///
    /// Reads no more than the roomiest sink queue can take: when every sink is
    /// behind, records stay in the rings (whose own overflow policy then
    /// applies, protecting WARN and above) instead of being copied out only to
    /// be dropped. A sink slower than the others still drops (and counts) its
    /// own records, so that it delays no other sink.
    ///
    /// A lossless ring (`wait_ms`: its producers wait for room rather than
    /// drop) is read no faster than the slowest sink that is writing can take:
    /// a slow sink then holds records in the ring, and the producers wait,
    /// instead of shedding them. A sink whose writes fail is still isolated
    /// (its backlog, then its own shedding), so that a broken output never
    /// stops the others.
    /// `None` when no ring may be read for want of room.
    fn poll_once(&mut self) -> Option<usize> {
        let (mut room_any, mut room_up) = (0usize, usize::MAX);
        for s in &self.sinks {
            let r = s.queue.room();
            room_any = room_any.max(r);
            // Relaxed: a hint; a sink that just failed is seen at the next poll.
            if s.queue.stats.is_up() {
                room_up = room_up.min(r);
            }
        }
        if self.sinks.is_empty() {
            room_any = usize::MAX;
        }
        room_up = room_up.min(room_any);
        if room_any < MIN_POLL {
            return None;
        }
        let n = self.sources.len();
        self.turn = self.turn.wrapping_add(1);
        let (mut total, mut blocked) = (0, 0);
        // Rings being left first: their records go out before those of the
        // rings that replaced them (see "A thread's order across a
        // replacement").
        let leaving_first = (0..n)
            .map(|k| (self.turn + k) % n)
            .filter(|&i| self.sources[i].leaving.is_some())
            .chain(
                (0..n)
                    .map(|k| (self.turn + k) % n)
                    .filter(|&i| self.sources[i].leaving.is_none()),
            )
            .collect::<Vec<_>>();
        for i in leaving_first {
            let lossless = self.sources[i].ring.header().wait_ms > 0;
            let room = if lossless { room_up } else { room_any };
            if room < MIN_POLL {
                blocked += 1;
                continue;
            }
            let got = self.poll_source(i, POLL_MAX.min(room));
            total += got;
            room_any -= got.min(room_any);
            room_up -= got.min(room_up);
        }
        if n > 0 && blocked == n {
            return None;
        }
        Some(total)
    }

    /// Whether every older ring of source `i`'s path is settled: read to its
    /// end, nothing reserved in it but incomplete, nothing of it held back.
    fn older_settled(&self, i: usize) -> bool {
        let me = &self.sources[i];
        self.sources.iter().all(|o| {
            o.age >= me.age
                || o.origin != me.origin
                || o.leaving != Some(Leaving::Replaced)
                || (o.held.is_none() && o.consumer.is_drained())
        })
    }

    /// Polls at most `max` records of source `i` and hands them to the sinks,
    /// or holds them back until the older rings of its path settle. Returns
    /// the records polled or handed out.
    fn poll_source(&mut self, i: usize, max: usize) -> usize {
        let src = &self.sources[i];
        if src.leaving == Some(Leaving::Truncated) || src.ring.faulted() {
            // The file was shrunk under us: what is left reads as zeros.
            return 0;
        }
        if let Some(held) = self.sources[i].held.take() {
            // Read before the older rings were last seen unsettled: handed out
            // once they are (or after ORDER_WAIT), and only then is this ring
            // read on.
            if self.older_settled(i) || held.since.elapsed() >= ORDER_WAIT {
                self.hand_out(i, held.chunk);
                return held.n;
            }
            self.sources[i].held = Some(held);
            return 0;
        }
        let mut chunk = self.reuse_chunk();
        let src = &mut self.sources[i];
        let n = src.consumer.poll(&mut chunk.batch, max);
        if n == 0 {
            self.pool.push(chunk);
            return 0;
        }
        // Looked at *after* the poll: settled now means that every record a
        // thread completed in an older ring before one of these was read (and
        // handed out) already.
        if !self.older_settled(i) {
            self.sources[i].held = Some(Held {
                chunk,
                n,
                since: Instant::now(),
            });
            return 0;
        }
        self.hand_out(i, chunk);
        n
    }

    /// Hands the records of `chunk`, read from source `i`, to the sinks.
    fn hand_out(&mut self, i: usize, mut chunk: Chunk) {
        let src = &mut self.sources[i];
        let id = self.next_id;
        self.next_id += 1;
        chunk.resolve(id, &mut src.resolver);
        chunk.line_sinks = [0; 2];
        for s in &self.sinks {
            if let Some(format) = s.config.kind.line_format() {
                let n = &mut chunk.line_sinks[format as usize];
                *n = n.saturating_add(1);
            }
        }
        let chunk = Arc::new(chunk);
        let blocks = src.ring.geometry().blocks as u64;
        for s in &self.sinks {
            let mut job = Job::new(chunk.clone(), s.mask);
            // `max_backlog` (a percentage of the ring) in blocks.
            job.backlog = (blocks * s.config.max_backlog as u64 / 100).max(1);
            if let Some(place) = src.places.get_mut(&s.config.name) {
                job.mark = Some(Mark {
                    ring: src.ring.clone(),
                    slot: place.slot,
                });
                if let Some(resume) = &place.resume {
                    job.skip = skip_done(&chunk, resume);
                    if chunk
                        .block_ends
                        .first()
                        .is_some_and(|p| p.seq > resume.max_seq())
                    {
                        place.resume = None; // read past everything it had finished
                    }
                }
            }
            s.queue.push(job);
        }
        self.pending.push_back(Pending { chunk });
    }

    /// Hands out every held chunk, oldest ring first (at shutdown: the order
    /// rule gives way to the deadline).
    fn release_held(&mut self) {
        let mut order: Vec<usize> = (0..self.sources.len())
            .filter(|&i| self.sources[i].held.is_some())
            .collect();
        order.sort_by_key(|&i| self.sources[i].key);
        for i in order {
            if let Some(h) = self.sources[i].held.take() {
                self.hand_out(i, h.chunk);
            }
        }
    }

    /// A chunk from the pool, else one taken back from the sinks, else a new
    /// one: reusing a chunk's buffers saves allocating, growing and
    /// faulting in a few MiB a poll.
    fn reuse_chunk(&mut self) -> Chunk {
        if let Some(c) = self.pool.pop() {
            return c;
        }
        let mut k = 0;
        while k < self.returning.len() {
            // One owner left (this one): no sink can take a new reference,
            // as only the reader hands chunks out.
            if Arc::strong_count(&self.returning[k]) == 1 {
                if let Ok(c) = Arc::try_unwrap(self.returning.swap_remove(k)) {
                    return c;
                }
                continue;
            }
            k += 1;
        }
        Chunk::default()
    }

    /// With nothing to read (the rings are empty, or the sinks are behind):
    /// formats the lines of the newest handed-out chunk whose formatting no
    /// sink has taken on, so that its sinks only write them, and formatting
    /// and writing run on two cores. Only for formats whose sinks take every
    /// record of the chunk (a filtered sink formats only what it takes).
    /// Returns whether it formatted a chunk.
    fn format_ahead(&self) -> bool {
        for p in self.pending.iter().rev() {
            let c = &p.chunk;
            for format in [Format::Json, Format::Text] {
                if c.line_sinks[format as usize] == 0 || c.formatting_claimed(format) {
                    continue;
                }
                let all_taken = self
                    .sinks
                    .iter()
                    .filter(|s| s.config.kind.line_format() == Some(format))
                    .all(|s| (0..LEVELS).all(|l| s.mask & (1 << l) != 0 || c.counts[l] == 0));
                if all_taken && c.claim_formatting(format) {
                    c.lines(format);
                    return true;
                }
            }
        }
        false
    }

    /// The oldest chunk some sink still holds.
    fn pin(&self) -> Option<u64> {
        self.sinks
            .iter()
            .chain(&self.retiring)
            .filter_map(|s| s.queue.pin())
            .min()
    }

    /// Commits the chunks every sink is done with, each in its ring.
    fn commit_finished(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pin = self.pin();
        while let Some(p) = self.pending.front() {
            if pin.is_some_and(|pin| p.chunk.id >= pin) {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            if let Some(src) = self.sources.iter_mut().find(|s| s.key == p.chunk.source) {
                src.commit_end = src.commit_end.max(p.chunk.end);
                src.dirty = true;
            }
            match Arc::try_unwrap(p.chunk) {
                Ok(c) if self.pool.len() < POOL => self.pool.push(c),
                Ok(_) => {}
                Err(shared) => {
                    if self.returning.len() >= POOL {
                        // A sink holds on to it long (stuck): let it go.
                        self.returning.remove(0);
                    }
                    self.returning.push(shared);
                }
            }
        }
        for src in &mut self.sources {
            if std::mem::take(&mut src.dirty) && src.leaving != Some(Leaving::Truncated) {
                src.consumer.commit(src.commit_end);
            }
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
            match self.poll_once() {
                Some(0) => break,
                Some(_) => {}
                None => std::thread::park_timeout(Duration::from_millis(10)),
            }
            self.commit_finished();
        }
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
