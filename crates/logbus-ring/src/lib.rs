//! The logbus ring: a memory-mapped, multi-process, lock-free log ring.
//!
//! Producers ([`Writer`]) write fixed-layout records into blocks of one ring
//! file with no lock, no syscall and no allocation; blocks are handed out on
//! demand, so any number of threads and processes write at once and any one of
//! them may fill the whole ring. One [`Consumer`] per ring claims and commits
//! records; [`Peeker`]s read without consuming. The file layout is in
//! [`layout`], the concurrent protocol in the docs of the `block` module, the
//! overflow policy below.
//!
//! # Overflow policy
//! Each level may fill the ring up to its watermark (by default TRACE and
//! DEBUG 50 %, INFO 75 %, WARN and above 100 % of the blocks). A record that
//! finds no room:
//! * in lossless mode (`RingOptions::wait_ms`), first waits up to that long
//!   for the consumer to free room;
//! * below the protection level (default WARN): is dropped by its producer and
//!   counted as dropped;
//! * at or above it: evicts the records below the protection level in the
//!   oldest block (its protected ones are moved into the next block, order
//!   kept), counted as evicted per level; only when that is not possible is
//!   the new record dropped and counted.
//!
//! Every record emitted ends delivered, dropped, evicted, torn (its producer
//! died while writing it) or unread, each counted per level ([`Stats`]).
//!
//! # Example
//! ```
//! # let dir = std::env::temp_dir().join(format!("logbus-doc-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! use logbus_ring::{Batch, Consumer, Event, Field, Ring, Value};
//! let ring = Ring::open(dir.join("ring"))?;
//! let mut writer = ring.writer()?;
//! writer.emit(&Event {
//!     target: "app::db",
//!     fields: &[Field { key: "rows", value: Value::U64(3) }],
//!     ..Event::new(9, "query done")
//! })?;
//! let mut consumer = Consumer::acquire(&ring)?;
//! let mut batch = Batch::new();
//! consumer.poll(&mut batch, 64);
//! let r = batch.get(0).unwrap();
//! assert_eq!((r.target(), r.message()), ("app::db", "query done"));
//! assert_eq!(r.fields().next(), Some(("rows", Value::U64(3))));
//! consumer.commit_all();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod block;
mod clock;
mod consumer;
mod error;
mod event;
mod evict;
mod fork;
mod futex;
// Also under Miri, for the tests of crates that format decoded records.
#[cfg(any(test, miri, feature = "fuzzing"))]
pub mod fuzzing;
// Public: the file format, for `logbus create` (MIN_BLOCKS), the version
// line of both binaries, and tests that build or damage ring files.
pub mod layout;
mod level;
mod lock;
#[cfg(all(test, loom))]
mod loom_model;
// Public: `copy_small`, for logbus-format's unchecked writer.
pub mod mem;
mod peeker;
mod read;
mod record;
mod resource;
mod ring;
// Public: both binaries install the SIGBUS guard at start.
pub mod sigbus;
mod sink_ledger;
mod sink_marks;
mod stats;
mod traceparent;
// Public: the collector's file sink and ring directory check files the
// same way the ring does; `logbus create` asks for the trusted group.
pub mod trust;
mod wait_any;
mod writer;

/// A small ring (16 KiB, four blocks of 4 KiB) in a fresh directory, for the
/// unit tests that need one.
#[cfg(test)]
pub(crate) fn small_test_ring(name: &str) -> (logbus_testkit::TempDir, Ring) {
    let dir = logbus_testkit::TempDir::new(name);
    let opts = RingOptions {
        size: 16 << 10,
        block_size: 4096,
        ..RingOptions::default()
    };
    let ring = Ring::open_with(dir.ring(), &opts).unwrap();
    (dir, ring)
}

pub use clock::{monotonic_ns, now_ns};
pub use consumer::{Consumer, Repair};
pub use error::{ConsumerError, EmitError, OpenError, WriterError};
pub use event::{Emitted, Event, Field, Value};
pub use layout::Geometry;
pub use level::{Level, ParseSeverityError, Severity, LEVELS};
pub use peeker::Peeker;
pub use read::Batch;
pub use record::{BlockPos, FieldIter, RecordRef};
pub use resource::{carried_service, ProcessCounts, Resource, CARRIED_FIELDS, SERVICE_FIELD};
pub use ring::{ring_path, Ring, RingOptions, DEFAULT_RING, RING_ENV};
pub use sink_ledger::LostInCrash;
pub use sink_marks::{SinkMarks, SinkResume, SinkSlot};
pub use stats::{LevelCounts, Stats};
pub use traceparent::TraceParent;
pub use wait_any::{wait_any, Waker, FALLBACK_NAP, WAIT_ANY_RINGS};
pub use writer::Writer;
