//! The logbus ring: a memory-mapped, multi-process, lock-free log ring.
//!
//! Producers ([`LaneWriter`]) write fixed-layout records into lanes of one ring
//! file with no lock, no syscall and no allocation; one [`Consumer`] per ring
//! claims and commits them; [`Peeker`]s read without consuming. The file layout
//! is in [`layout`], the concurrent protocol in the docs of the `lane` module
//! (reproduced in the crate README), the overflow policy below.
//!
//! # Overflow policy
//! Each level may fill a lane up to its watermark (by default TRACE and DEBUG
//! 50 %, INFO 75 %, WARN and above 100 %). A record that finds no room:
//! * below the protection level (default WARN): is dropped by its producer and
//!   counted as dropped;
//! * at or above it: evicts the oldest unread record of its lane that is below
//!   the protection level, counted as evicted (protected records in front of it
//!   are moved over it, keeping their order); only when every unread record of
//!   the lane is protected (or the consumer has records of the lane in flight)
//!   is the new record dropped and counted.
//!
//! Producers never wait for the reader.
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

mod clock;
mod consumer;
mod cursor;
mod error;
mod fork;
mod lane;
pub mod layout;
mod level;
mod lock;
#[cfg(all(test, loom))]
mod loom_model;
pub mod mem;
mod record;
mod resource;
mod ring;

pub use clock::now_ns;
pub use consumer::{Batch, Consumer, LevelCounts, Peeker, Stats};
pub use error::{ConsumerError, EmitError, LaneError, OpenError};
pub use lane::{Emitted, Event, Field, LaneWriter, Value};
pub use layout::Geometry;
pub use level::{Level, ParseSeverityError, Severity, LEVELS};
pub use record::{FieldIter, RecordRef};
pub use resource::Resource;
pub use ring::{ring_path, Ring, RingOptions, DEFAULT_RING, RING_ENV};
