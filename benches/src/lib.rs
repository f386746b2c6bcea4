//! Shared code of the benchmarks.
//!
//! Every competitor (the logbus ring, a `Mutex<BufWriter<File>>`, ...) is a
//! [`Competitor`]: it hands out one per-thread [`Emit`]ter and can be
//! [`reset`](Competitor::reset) between measured chunks. [`measure`] runs any
//! competitor through the same code, alone or next to a [`Peer`] that emits at
//! the same time (another thread, [`ThreadPeer`], or another process,
//! [`ProcessPeer`]), so that the only difference between two figures is the
//! competitor.
//!
//! Only the emit loops are timed ([`time_emits`]); draining the ring or
//! rewinding the file happens between chunks, outside the timed sections.
//!
//! A benchmark binary that uses [`ProcessPeer`] must call
//! [`run_child_if_asked`] first thing in `main`: the peer process is that same
//! binary, re-executed.
#![deny(missing_docs)]

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

pub mod drive;
pub mod json_line;
pub mod latency;
pub mod lttng;
pub mod procstat;
pub mod rounds;
pub mod shm;

use logbus_ring::{now_ns, Batch, Consumer, Emitted, Event, Level, Ring, RingOptions, Writer};

/// The message of every benchmark record: exactly 100 bytes.
pub const MESSAGE: &str = "request served: GET /api/v1/orders/18446744073709551615 \
                           status=200 bytes=5120 user=alice took=12.5ms";
const _: () = assert!(MESSAGE.len() == 100);

/// The target of every benchmark record.
pub const TARGET: &str = "app::handler";
/// The trace id of every benchmark record.
pub const TRACE_ID: [u8; 16] = *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36";
/// The span id of every benchmark record.
pub const SPAN_ID: [u8; 8] = *b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7";
/// The severity of every benchmark record (INFO).
pub const SEVERITY: u8 = 9;

/// The benchmark record as a ring event: time 0, so that `emit` reads the clock.
pub const EVENT: Event<'static> = Event {
    severity: SEVERITY,
    time_ns: 0,
    target: TARGET,
    message: MESSAGE,
    fields: &[],
    trace_id: Some(TRACE_ID),
    span_id: Some(SPAN_ID),
    trace_flags: 1,
};

/// Prints one line and exits with status 1.
///
/// Benchmarks fail this way rather than by panicking: a panic in one thread of
/// a [`ThreadPeer`] pair would leave the other waiting on a barrier forever.
pub fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("benchmark failed: {what}");
    std::process::exit(1)
}

/// One thread's way of writing the benchmark record.
pub trait Emit: Send {
    /// Writes one benchmark record (reading the clock); fails the benchmark if
    /// the record was not written in full.
    fn emit_one(&mut self);
}

/// Something a user could log through, measured by [`measure`].
pub trait Competitor: Sync {
    /// What one thread writes through.
    type Emitter: Emit;
    /// A writer for the calling thread.
    fn emitter(&self) -> Self::Emitter;
    /// Most records one emitter may write between two resets.
    fn chunk(&self) -> u64;
    /// Makes room for the next chunk (not timed). No emitter writes meanwhile.
    fn reset(&self);
}

/// Times `n` calls of `w.emit_one()`.
///
/// The one timed loop of every benchmark, monomorphised per emitter.
#[inline(never)]
pub fn time_emits<E: Emit>(w: &mut E, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        w.emit_one();
    }
    start.elapsed()
}

/// Whose time [`measure`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The calling thread's.
    Me,
    /// The peer's.
    Peer,
}

/// Another emitter running at the same time as the measuring thread.
pub trait Peer {
    /// Tells the peer to start emitting `n` records now.
    fn start(&mut self, n: u64);
    /// Waits until the peer has emitted them; returns how long that took it.
    fn finish(&mut self) -> Duration;
}

/// No peer: the uncontended case.
pub struct Alone;

impl Peer for Alone {
    fn start(&mut self, _n: u64) {}
    fn finish(&mut self) -> Duration {
        Duration::ZERO
    }
}

/// Emits `iters` records through `w` (and `iters` through `peer` at the same
/// time), in chunks of at most [`Competitor::chunk`] with a
/// [`Competitor::reset`] after each, and returns the emit time of `side`.
pub fn measure<C: Competitor, P: Peer>(
    iters: u64,
    competitor: &C,
    w: &mut C::Emitter,
    peer: &mut P,
    side: Side,
) -> Duration {
    let chunk = competitor.chunk();
    let (mut mine, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let mut left = iters;
    while left > 0 {
        let n = left.min(chunk);
        peer.start(n);
        mine += time_emits(w, n);
        theirs += peer.finish();
        competitor.reset();
        left -= n;
    }
    match side {
        Side::Me => mine,
        Side::Peer => theirs,
    }
}

/// A unique path in `/dev/shm` (removed on drop).
pub struct TempPath(PathBuf);

impl TempPath {
    /// `/dev/shm/logbus-bench-<pid>-<ns><suffix>`; nothing is created.
    pub fn new(suffix: &str) -> TempPath {
        TempPath(PathBuf::from(format!(
            "/dev/shm/logbus-bench-{}-{}{suffix}",
            std::process::id(),
            now_ns()
        )))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The logbus ring: a fresh ring in `/dev/shm`, drained by a consumer between
/// chunks.
pub struct RingCompetitor {
    drain: Mutex<(Consumer, Batch)>,
    ring: Ring,
    path: TempPath,
}

impl RingCompetitor {
    /// The benchmark ring: 256 MiB, so that a chunk never meets the INFO
    /// watermark.
    pub fn options() -> RingOptions {
        RingOptions {
            size: 256 << 20,
            ..RingOptions::default()
        }
    }

    /// Creates the ring and takes its consumer role.
    pub fn new() -> RingCompetitor {
        let path = TempPath::new("");
        let ring = Ring::create(path.path(), &Self::options()).unwrap_or_else(|e| fail(e));
        let consumer = Consumer::acquire(&ring).unwrap_or_else(|e| fail(e));
        RingCompetitor {
            drain: Mutex::new((consumer, Batch::new())),
            ring,
            path,
        }
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The ring file, for a [`ProcessPeer`] to open.
    pub fn path(&self) -> &Path {
        self.path.path()
    }

    /// Fails the benchmark unless every record emitted so far was written
    /// (none dropped, evicted or torn).
    pub fn check_nothing_lost(&self) {
        let t = self.ring.stats().total();
        if t.emitted != t.published || t.dropped + t.evicted + t.torn != 0 {
            fail(format_args!("the ring lost records: {t:?}"));
        }
    }
}

impl Default for RingCompetitor {
    fn default() -> Self {
        RingCompetitor::new()
    }
}

impl Competitor for RingCompetitor {
    type Emitter = Writer;

    fn emitter(&self) -> Writer {
        self.ring.writer().unwrap_or_else(|e| fail(e))
    }

    fn chunk(&self) -> u64 {
        // 64 Ki records of about 200 bytes: far below the INFO watermark
        // (75 % of 256 MiB) even with partly filled blocks.
        1 << 16
    }

    fn reset(&self) {
        let mut guard = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        let (consumer, batch) = &mut *guard;
        while consumer.poll(batch, 1 << 16) > 0 {
            consumer.commit_all();
        }
    }
}

impl Emit for Writer {
    #[inline]
    fn emit_one(&mut self) {
        match self.emit(&EVENT) {
            Ok(Emitted::Written { evicted: 0 }) => {}
            other => fail(format_args!(
                "emit returned {other:?} during measurement: the ring was too full"
            )),
        }
    }
}

/// The alternative a user would pick: one `BufWriter<File>` (8 KiB buffer) in
/// `/dev/shm` behind a `Mutex`, the line formatted under the lock with the same
/// fields as the ring record.
pub struct MutexFileCompetitor {
    file: Arc<Mutex<BufWriter<File>>>,
    _path: TempPath,
}

impl MutexFileCompetitor {
    /// Creates the file.
    pub fn new() -> MutexFileCompetitor {
        let path = TempPath::new(".log");
        let file = File::create(path.path()).unwrap_or_else(|e| fail(e));
        MutexFileCompetitor {
            file: Arc::new(Mutex::new(BufWriter::new(file))),
            _path: path,
        }
    }
}

impl Default for MutexFileCompetitor {
    fn default() -> Self {
        MutexFileCompetitor::new()
    }
}

/// One thread's handle on [`MutexFileCompetitor`]'s file.
pub struct MutexFileEmitter(Arc<Mutex<BufWriter<File>>>);

impl Competitor for MutexFileCompetitor {
    type Emitter = MutexFileEmitter;

    fn emitter(&self) -> MutexFileEmitter {
        MutexFileEmitter(Arc::clone(&self.file))
    }

    fn chunk(&self) -> u64 {
        1 << 16
    }

    fn reset(&self) {
        // Rewind without truncating, so that the file's pages are reused: this
        // spares the BufWriter the page allocation a growing log file pays.
        let mut w = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.flush().and_then(|()| w.rewind()) {
            fail(e)
        }
    }
}

impl Emit for MutexFileEmitter {
    #[inline]
    fn emit_one(&mut self) {
        let time = now_ns();
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let r = writeln!(
            w,
            "{time} {} {TARGET} trace_id={:032x} span_id={:016x} {MESSAGE}",
            Level::Info.name(),
            u128::from_be_bytes(TRACE_ID),
            u64::from_be_bytes(SPAN_ID),
        );
        if let Err(e) = r {
            fail(e)
        }
    }
}

/// Only the clock read that `emit` does for a record with time 0: the floor
/// under the ring's figure on this machine.
pub struct ClockOnly;

impl Competitor for ClockOnly {
    type Emitter = ClockOnly;

    fn emitter(&self) -> ClockOnly {
        ClockOnly
    }

    fn chunk(&self) -> u64 {
        1 << 16
    }

    fn reset(&self) {}
}

impl Emit for ClockOnly {
    #[inline]
    fn emit_one(&mut self) {
        std::hint::black_box(now_ns());
    }
}

/// What a [`ThreadPeer`] and the measuring thread share.
struct PeerShared {
    /// Both threads meet here before and after each chunk.
    barrier: Barrier,
    /// Records to emit in the next chunk; [`STOP`] ends the thread.
    n: AtomicU64,
    /// The peer's emit time of the last chunk, in ns.
    ns: AtomicU64,
}

const STOP: u64 = u64::MAX;

/// A peer thread with its own emitter, emitting when told.
pub struct ThreadPeer<'scope> {
    shared: Arc<PeerShared>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> ThreadPeer<'scope> {
    /// Starts a thread in `scope` that takes an emitter of `competitor` and waits
    /// for [`Peer::start`].
    pub fn spawn<'env, C: Competitor>(
        scope: &'scope Scope<'scope, 'env>,
        competitor: &'env C,
    ) -> ThreadPeer<'scope> {
        let shared = Arc::new(PeerShared {
            barrier: Barrier::new(2),
            n: AtomicU64::new(0),
            ns: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let thread = scope.spawn(move || {
            let mut w = competitor.emitter();
            loop {
                s.barrier.wait();
                // Relaxed: the barrier orders this load after the store in `start`.
                let n = s.n.load(Ordering::Relaxed);
                if n == STOP {
                    return;
                }
                let t = time_emits(&mut w, n);
                // Relaxed: the barrier below orders it before the load in `finish`.
                s.ns.store(t.as_nanos() as u64, Ordering::Relaxed);
                s.barrier.wait();
            }
        });
        ThreadPeer {
            shared,
            thread: Some(thread),
        }
    }
}

impl Peer for ThreadPeer<'_> {
    fn start(&mut self, n: u64) {
        // Relaxed: published to the peer by the barrier.
        self.shared.n.store(n, Ordering::Relaxed);
        self.shared.barrier.wait();
    }

    fn finish(&mut self) -> Duration {
        self.shared.barrier.wait();
        // Relaxed: the barrier ordered the peer's store before this load.
        Duration::from_nanos(self.shared.ns.load(Ordering::Relaxed))
    }
}

impl Drop for ThreadPeer<'_> {
    fn drop(&mut self) {
        self.start(STOP);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The environment variable that turns a benchmark binary into a peer process;
/// its value is the ring path.
pub const CHILD_ENV: &str = "LOGBUS_BENCH_PEER_RING";

/// A peer process: this binary re-executed with [`CHILD_ENV`] set. It opens
/// the same ring, makes a writer, and per chunk reads the record count (8 bytes,
/// little-endian) from its stdin, emits that many records, and writes its emit
/// time in ns (8 bytes) to its stdout. A count of 0 or end of input ends it.
pub struct ProcessPeer {
    child: Child,
    to: ChildStdin,
    from: ChildStdout,
}

impl ProcessPeer {
    /// Starts the peer on `ring` and waits until it holds a writer.
    pub fn spawn(ring: &Path) -> ProcessPeer {
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        let mut child = Command::new(exe)
            .env(CHILD_ENV, ring)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(format_args!("cannot start the peer process: {e}")));
        let to = child.stdin.take().expect("stdin is piped");
        let mut from = child.stdout.take().expect("stdout is piped");
        let mut ready = [0u8; 1];
        if from.read_exact(&mut ready).is_err() || ready != *b"R" {
            fail("the peer process did not start")
        }
        ProcessPeer { child, to, from }
    }
}

impl Peer for ProcessPeer {
    fn start(&mut self, n: u64) {
        if let Err(e) = self.to.write_all(&n.to_le_bytes()) {
            fail(format_args!("the peer process is gone: {e}"))
        }
    }

    fn finish(&mut self) -> Duration {
        let mut ns = [0u8; 8];
        if let Err(e) = self.from.read_exact(&mut ns) {
            fail(format_args!("the peer process is gone: {e}"))
        }
        Duration::from_nanos(u64::from_le_bytes(ns))
    }
}

impl Drop for ProcessPeer {
    fn drop(&mut self) {
        let _ = self.to.write_all(&0u64.to_le_bytes());
        let _ = self.child.wait();
    }
}

/// If this process was started as a [`ProcessPeer`], runs the peer and exits;
/// otherwise returns at once.
pub fn run_child_if_asked() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let ring = Ring::open_existing(&path).unwrap_or_else(|e| fail(e));
    let mut w: Writer = ring.writer().unwrap_or_else(|e| fail(e));
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let reply = |out: &mut std::io::StdoutLock<'_>, bytes: &[u8]| {
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            std::process::exit(1)
        }
    };
    reply(&mut output, b"R");
    let mut n = [0u8; 8];
    while input.read_exact(&mut n).is_ok() {
        let n = u64::from_le_bytes(n);
        if n == 0 {
            break;
        }
        let t = time_emits(&mut w, n);
        reply(&mut output, &(t.as_nanos() as u64).to_le_bytes());
    }
    std::process::exit(0)
}

/// A writer of `ring` whose records carry the benchmarks' resource (service
/// `bench-service`, command `command`), as the collector benchmarks need for
/// JSON lines with `service`.
pub fn bench_writer(ring: &logbus_ring::Ring, command: &str) -> Writer {
    let tag = ring
        .register_resource(&logbus_ring::Resource {
            pid: std::process::id(),
            service: "bench-service".into(),
            version: "1.0.0".into(),
            host: "bench-host".into(),
            command: command.into(),
        })
        .expect("resource");
    let mut w = ring.writer().expect("writer");
    w.set_resource(tag);
    w
}

/// Emits the collector benchmarks' record (`benches/collect.rs` and the
/// `throughput` harness): INFO, target `bench::http`, message `request
/// handled`, fields `request_id` (`i`), `path` (a string) and `latency_ms`
/// (an f64).
pub fn emit_collector_record(w: &mut Writer, i: u64) -> Emitted {
    let fields = [
        logbus_ring::Field {
            key: "request_id",
            value: logbus_ring::Value::U64(i),
        },
        logbus_ring::Field {
            key: "path",
            value: logbus_ring::Value::Str("/api/v1/orders"),
        },
        logbus_ring::Field {
            key: "latency_ms",
            value: logbus_ring::Value::F64(12.5),
        },
    ];
    let ev = Event {
        target: "bench::http",
        fields: &fields,
        ..Event::new(9, "request handled")
    };
    w.emit(&ev).expect("emit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_every_record_of_both_threads_across_chunks() {
        let ring = RingCompetitor::new();
        let n = ring.chunk() + 7;
        let mut w = ring.emitter();
        std::thread::scope(|s| {
            let mut peer = ThreadPeer::spawn(s, &ring);
            measure(n, &ring, &mut w, &mut peer, Side::Peer);
        });
        ring.check_nothing_lost();
        let t = ring.ring().stats().total();
        assert_eq!((t.emitted, t.delivered, t.unread), (2 * n, 2 * n, 0));
    }

    #[test]
    fn mutex_file_line_has_the_ring_record_fields() {
        let file = MutexFileCompetitor::new();
        let mut w = file.emitter();
        measure(3, &file, &mut w, &mut Alone, Side::Me);
        let text = std::fs::read_to_string(file._path.path()).unwrap();
        let line = text.lines().next().unwrap();
        let parts: Vec<&str> = line.splitn(6, ' ').collect();
        assert!(parts[0].parse::<u64>().unwrap() > 0, "{line}");
        assert_eq!(
            &parts[1..5],
            [
                "INFO",
                TARGET,
                "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id=00f067aa0ba902b7"
            ]
        );
        assert_eq!(parts[5], MESSAGE);
    }
}
