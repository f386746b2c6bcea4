//! The collector's public surface besides [`Collector`](super::Collector)
//! itself: [`Control`], the requests other threads (the binary's signal
//! thread) make of the reader loop, and what starting and running return
//! ([`StartError`], [`Summary`], [`Unflushed`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;

use logbus_ring::{ConsumerError, Waker, LEVELS};

use crate::sink::SinkError;

/// Requests from outside the reader loop (the binary's signal thread).
#[derive(Default)]
pub struct Control {
    shutdown: AtomicBool,
    pub(super) reload: AtomicBool,
    pub(super) reader: OnceLock<Thread>,
    /// Ends the reader's sleep on its rings' futexes.
    pub(super) waker: OnceLock<Waker>,
}

impl Control {
    /// No requests yet.
    pub fn new() -> Control {
        Control::default()
    }

    /// Drain, flush, commit and return from [`Collector::run`](super::Collector::run).
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

    pub(super) fn shutdown_requested(&self) -> bool {
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
