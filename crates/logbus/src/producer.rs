//! [`Producer`]: the direct API every other front end (tracing layer, `log`
//! logger, other languages' bindings) ends in.
//!
//! # Per-thread writers
//! A ring [`Writer`] holds the block it is filling, so every thread needs its
//! own; writers share nothing else, so any number of threads may have one.
//! Each thread keeps its writers in a thread-local list, one entry per
//! `Producer` it has used (usually one). An entry is made lazily on the thread's
//! first record and dropped (its block closed) when the thread exits. The hot
//! path is: borrow the thread-local, find the entry (first position in
//! practice), write.
//!
//! # fork()
//! After `fork()` the child's copies of the parent's writers and ring handle
//! refuse to work ([`EmitError::Forked`]); the thread-local entry then asks the
//! shared state for a ring handle of the current process, which reopens the ring
//! (and registers the child's resource) once per child, and makes a new writer.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use logbus_ring::{
    monotonic_ns, EmitError, Emitted, Event, Resource, Ring, RingOptions, Writer, WriterError,
};

use crate::error::Error;

/// How long a thread whose process could not reopen the ring (after `fork()`)
/// waits before trying again, in ns. Records in between are lost (counted by
/// the caller through [`Outcome::Unavailable`]).
pub const REOPEN_RETRY_NS: u64 = 100_000_000;

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The record is in the ring; `evicted` older low-severity records made room.
    Written {
        /// Records evicted to make room.
        evicted: u32,
    },
    /// The ring's overflow policy refused it (counted as dropped by the ring).
    Dropped,
    /// This process (a `fork()` child) could not reopen the ring; the record is lost.
    Unavailable,
}

/// Who this process is, as written into the ring's resource table.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub service: String,
    pub version: String,
    pub host: String,
    pub command: String,
}

impl Identity {
    /// `service` and `version` from the caller, else `OTEL_SERVICE_NAME` and the
    /// executable's name; host name and command line from the system.
    pub(crate) fn detect(service: Option<String>, version: Option<String>) -> Identity {
        let service = service
            .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
            .filter(|s| !s.is_empty())
            .or_else(exe_name)
            .unwrap_or_else(|| "unknown_service".to_string());
        Identity {
            service,
            version: version.unwrap_or_default(),
            host: host_name(),
            command: command_line(),
        }
    }
}

fn exe_name() -> Option<String> {
    let exe = std::env::current_exe()
        .ok()
        .or_else(|| std::env::args_os().next().map(PathBuf::from))?;
    Some(exe.file_name()?.to_string_lossy().into_owned())
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn command_line() -> String {
    match std::fs::read("/proc/self/cmdline") {
        Ok(raw) => raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The ring handle of one process, with its resource tag.
struct ProcessRing {
    ring: Ring,
    tag: u8,
    /// When the resource table had no room (`tag` 0): the resource the
    /// process's records carry themselves.
    carry: Option<Arc<Resource>>,
    pid: u32,
}

struct Shared {
    /// Tells this producer's entries apart in the thread-local lists.
    id: u64,
    path: PathBuf,
    options: RingOptions,
    identity: Identity,
    /// The current process's ring; replaced in a `fork()` child. Locked only to
    /// make a writer (or reopen), never per record.
    process: Mutex<Option<ProcessRing>>,
    /// Bumped when the ring was reopened because its path names another file
    /// (or none) now: threads drop writers made before and make new ones.
    epoch: AtomicU64,
}

impl Shared {
    fn open_ring(&self, pid: u32) -> Result<ProcessRing, Error> {
        let ring = Ring::open_with(&self.path, &self.options)?;
        let resource = Resource {
            pid,
            service: self.identity.service.clone(),
            version: self.identity.version.clone(),
            host: self.identity.host.clone(),
            command: self.identity.command.clone(),
        };
        // A full resource table costs the records ~40 bytes each (they carry
        // their resource), neither their place nor their attribution.
        let (tag, carry) = match ring.register_resource(&resource) {
            Ok(tag) => (tag, None),
            Err(WriterError::TableFull { .. }) => (0, Some(Arc::new(resource))),
            Err(_) => (0, None),
        };
        Ok(ProcessRing {
            ring,
            tag,
            carry,
            pid,
        })
    }

    /// Reopens the ring when its path no longer names the file this process
    /// writes into (deleted, or replaced by another ring): records must go
    /// where the collector reads. Called by the watcher thread.
    fn follow_path(&self) {
        let pid = std::process::id();
        let mut guard = match self.process.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stale = guard
            .as_ref()
            .is_some_and(|p| p.pid == pid && !p.ring.is_current());
        if !stale {
            return;
        }
        if let Ok(fresh) = self.open_ring(pid) {
            *guard = Some(fresh);
            // Release: a thread that sees the new epoch (Acquire) and then
            // locks `process` finds the new ring (the mutex orders it anyway).
            self.epoch.fetch_add(1, Ordering::Release);
        }
    }

    /// The ring handle of the calling process (reopened after `fork()`), or
    /// `None` when the child cannot reopen it.
    fn ring(&self) -> Option<(Ring, u8, Option<Arc<Resource>>)> {
        let mut guard = match self.process.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let pid = std::process::id();
        if guard.as_ref().is_none_or(|p| p.pid != pid) {
            // Drop the parent's handle first: in a child it closes nothing (the
            // ring crate's atfork handler did) and holds nothing.
            *guard = None;
            *guard = self.open_ring(pid).ok();
        }
        guard
            .as_ref()
            .map(|p| (p.ring.clone(), p.tag, p.carry.clone()))
    }
}

/// Writes records into a ring from any number of threads, without locks,
/// system calls or allocation per record.
///
/// Cheap to clone (all clones share one ring handle). Each thread that emits
/// makes a writer of its own on its first record and keeps it until it exits.
///
/// Nothing is buffered in the process: when [`Producer::emit`] returns
/// [`Outcome::Written`], the record is in the shared-memory ring and survives the
/// process being killed the next instant.
///
/// # Examples
/// ```
/// # let dir = std::env::temp_dir().join(format!("logbus-doc-producer-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use logbus::{Event, Field, Outcome, Producer, Value};
/// let producer = Producer::open(dir.join("ring"))?;
/// let outcome = producer.emit(&Event {
///     target: "billing",
///     fields: &[Field { key: "amount", value: Value::F64(12.5) }],
///     ..Event::new(9, "invoice paid")
/// });
/// assert_eq!(outcome, Outcome::Written { evicted: 0 });
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), logbus::Error>(())
/// ```
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("path", &self.shared.path)
            .field("service", &self.shared.identity.service)
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Producer {
    /// Opens (or creates, with default options) the ring at `path`, and registers
    /// this process's resource (service = `OTEL_SERVICE_NAME` or the executable name).
    ///
    /// # Errors
    /// [`Error::Open`] when the ring cannot be opened or created.
    pub fn open(path: impl AsRef<Path>) -> Result<Producer, Error> {
        Producer::with_identity(
            path.as_ref(),
            RingOptions::default(),
            Identity::detect(None, None),
        )
    }

    pub(crate) fn with_identity(
        path: &Path,
        options: RingOptions,
        identity: Identity,
    ) -> Result<Producer, Error> {
        let shared = Shared {
            // Relaxed: only uniqueness matters.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            options,
            identity,
            process: Mutex::new(None),
            epoch: AtomicU64::new(0),
        };
        let first = shared.open_ring(std::process::id())?;
        *shared
            .process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(first);
        let shared = Arc::new(shared);
        spawn_watcher(Arc::downgrade(&shared));
        Ok(Producer { shared })
    }

    /// The ring file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The service name written into the resource table.
    pub fn service(&self) -> &str {
        &self.shared.identity.service
    }

    /// A handle to the ring of the calling process (reopened after `fork()`),
    /// e.g. to read [`Ring::stats`]. `None` only in a `fork()` child that could
    /// not reopen the ring.
    pub fn ring(&self) -> Option<Ring> {
        self.shared.ring().map(|(r, _, _)| r)
    }

    /// Writes one record from the calling thread: no lock, no system call, no
    /// allocation once the thread has its writer. Never waits (unless the ring
    /// was created in lossless mode): when the ring is full its overflow policy
    /// decides (see [`Outcome`]).
    ///
    /// `event.time_ns == 0` means now. pid and tid are filled in.
    #[inline]
    pub fn emit(&self, event: &Event<'_>) -> Outcome {
        let done = WRITERS.try_with(|writers| {
            let mut writers = writers.try_borrow_mut().ok()?;
            Some(self.emit_local(&mut writers, event))
        });
        match done {
            Ok(Some(outcome)) => outcome,
            // The thread-local is being destroyed (a record from another
            // thread-local's destructor), or borrowed further up this stack:
            // write through a writer made just for this record.
            _ => {
                let mut tw = ThreadWriter::Idle;
                self.emit_with(&mut tw, event)
            }
        }
    }

    #[inline]
    fn emit_local(&self, writers: &mut Vec<Local>, event: &Event<'_>) -> Outcome {
        let id = self.shared.id;
        // Acquire: pairs with the Release bump in `follow_path`.
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        let i = match writers.iter().position(|l| l.id == id) {
            Some(i) => i,
            None => {
                // First record of this thread for this producer. Drop the
                // writers of producers that no longer exist while we are here.
                writers.retain(|l| l.owner.strong_count() > 0);
                writers.push(Local {
                    id,
                    owner: Arc::downgrade(&self.shared),
                    writer: ThreadWriter::Idle,
                    epoch,
                });
                writers.len() - 1
            }
        };
        let local = &mut writers[i];
        if local.epoch != epoch {
            // The ring was reopened: this writer writes into the old file.
            local.writer = ThreadWriter::Idle;
            local.epoch = epoch;
        }
        self.emit_with(&mut local.writer, event)
    }

    #[inline]
    fn emit_with(&self, tw: &mut ThreadWriter, event: &Event<'_>) -> Outcome {
        if let ThreadWriter::Writer(w) = tw {
            match w.emit(event) {
                Ok(Emitted::Written { evicted }) => return Outcome::Written { evicted },
                Ok(Emitted::Dropped) => return Outcome::Dropped,
                // Made before fork(): make a writer of this process below.
                Err(EmitError::Forked) => *tw = ThreadWriter::Idle,
            }
        }
        self.emit_slow(tw, event)
    }

    /// No writer yet, none to be had lately, or the writer became the parent's.
    #[cold]
    fn emit_slow(&self, tw: &mut ThreadWriter, event: &Event<'_>) -> Outcome {
        // Monotonic: a wall-clock step back must not stretch the retry pause.
        let now = monotonic_ns();
        if let ThreadWriter::Unavailable { retry_ns } = tw {
            if now < *retry_ns {
                return Outcome::Unavailable;
            }
        }
        *tw = self.make_writer(now);
        match tw {
            ThreadWriter::Writer(w) => match w.emit(event) {
                Ok(Emitted::Written { evicted }) => Outcome::Written { evicted },
                Ok(Emitted::Dropped) => Outcome::Dropped,
                // The ring was reopened in this very process generation, so
                // this cannot happen; give up on this record rather than loop.
                Err(EmitError::Forked) => Outcome::Unavailable,
            },
            ThreadWriter::Unavailable { .. } | ThreadWriter::Idle => Outcome::Unavailable,
        }
    }

    fn make_writer(&self, now: u64) -> ThreadWriter {
        let retry_ns = now.saturating_add(REOPEN_RETRY_NS);
        // Three times at most: a handle found stale (forked) is replaced by
        // `ring()`, one found retired by `follow_path`.
        for _ in 0..3 {
            let Some((ring, tag, carry)) = self.shared.ring() else {
                return ThreadWriter::Unavailable { retry_ns };
            };
            match ring.writer() {
                Ok(mut w) => {
                    w.set_resource(tag);
                    if let Some(carry) = &carry {
                        w.carry_resource(carry);
                    }
                    return ThreadWriter::Writer(w);
                }
                Err(WriterError::Forked) => continue,
                // Replaced at its path and let go by its collector: the
                // watcher would reopen the path within `WATCH_EVERY`; do it
                // now, so that this record goes where it is read.
                Err(WriterError::Retired) => self.shared.follow_path(),
                Err(WriterError::TableFull { .. }) | Err(WriterError::Io(_)) => {
                    return ThreadWriter::Unavailable { retry_ns }
                }
            }
        }
        ThreadWriter::Unavailable { retry_ns }
    }
}

/// One thread's state for one producer.
struct Local {
    id: u64,
    owner: Weak<Shared>,
    writer: ThreadWriter,
    /// `Shared::epoch` when `writer` was made.
    epoch: u64,
}

/// How often a producer checks that its ring's path still names its ring.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// One thread per producer (ended within [`WATCH_EVERY`] of the producer's
/// last clone being dropped): notices within a second that the ring file was
/// deleted or replaced, and reopens the path. A `stat` four times a second,
/// off the emit path, which stays free of system calls.
fn spawn_watcher(shared: Weak<Shared>) {
    let _ = std::thread::Builder::new()
        .name("logbus-watch".into())
        .spawn(move || loop {
            std::thread::sleep(WATCH_EVERY);
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.follow_path();
        });
}

// The writer stays inline: boxing it would add a pointer chase per record, and
// a thread has one `ThreadWriter` per producer, so the size does not matter.
#[allow(clippy::large_enum_variant)]
enum ThreadWriter {
    /// The thread's own writer.
    Writer(Writer),
    /// The ring could not be reopened after fork; retry at `retry_ns`.
    Unavailable { retry_ns: u64 },
    /// Nothing taken yet.
    Idle,
}

thread_local! {
    static WRITERS: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}
