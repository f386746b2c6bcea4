//! The logbus collector: the ring's single consumer, dispatching every record
//! to configured sinks (stdout, files, OpenTelemetry, null) without losing any
//! across restarts.
//!
//! # Pipeline
//! ```text
//!  ring ──poll──▶ reader thread ──Arc<Chunk>──▶ sink queue ──▶ sink thread ──▶ stdout / file / OTLP
//!    ▲              (resolve:                  (bounded,       (format,
//!    │               resources,                 per-level       write,
//!    └──commit───── levels, block ends;         overflow)       retry)
//!                    formats ahead when idle)
//! ```
//! * The reader ([`Collector::run`]) polls a [`logbus_ring::Batch`] into a
//!   chunk (`chunk.rs`), resolves each record's producer resource
//!   (`resolver.rs`: cached per resource tag and pid), counts levels, and shares the chunk (an `Arc`, no
//!   copy) with every sink's queue (`queue.rs`).
//! * Each sink runs on its own thread (which also opens its output) with its
//!   own queue, level filter and format (`sink/`: a folder per sink, its
//!   configuration and its writer side by side). Records are formatted
//!   once per chunk and format: by a sink alone with its format, into its
//!   own buffer as it writes; by the reader ahead of the sinks whenever it
//!   has nothing to read (so that formatting and writing use two cores);
//!   else by the first of several sinks sharing the format. A sink that
//!   cannot write keeps its backlog and retries with backoff: up to its
//!   `max_backlog` in the ring (uncommitted, so it survives a crash), beyond
//!   that in memory up to its `queue` (and 4 MiB of chunks), beyond that the
//!   oldest lowest-level records are shed and counted. It never holds back
//!   another sink.
//! * Memory is a window of chunks, not a number of records: a chunk holds
//!   at most 2,048 records or 256 KiB of them (plus one block), a sink's
//!   queue has room for [`WINDOW_BYTES`] of chunks (1.5 MiB: six full ones;
//!   a small chunk counts as [`MIN_CHARGE`]), and the reader reads a
//!   lossless ring no further ahead of the slowest sink that is writing
//!   than that, so at full throughput the collector holds about 8 chunks
//!   ([`CHUNKS`], counted in [`stats::Registry::chunks`]). A drop-mode ring
//!   is read as far ahead as the roomiest sink's `queue` records, so as not
//!   to lose records the ring would drop meanwhile.
//! * The reader commits to the ring only records every sink is done with (or
//!   holds beyond its `max_backlog`; see [`collector`]), and each sink marks
//!   per block how far it got, so a killed collector loses nothing still in
//!   the ring and repeats at most a sink's last group: its successor resumes
//!   at the committed cursor and skips, for each sink, what that sink had
//!   finished. What a sink held in memory only (beyond its `max_backlog`) is
//!   lost with a killed collector, and counted by its successor
//!   (`lost_in_crash`, from the ring's ledger: `ledger.rs`).
//!
//! # Example
//! ```
//! # let dir = std::env::temp_dir().join(format!("logbus-coll-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! use logbus_collector::{config, Collector, Control};
//! use logbus_ring::{Event, Ring};
//! let ring = Ring::open(dir.join("ring"))?;
//! ring.writer()?.emit(&Event::new(9, "hello"))?;
//! let cfg = config::parse(
//!     &format!("[[sinks]]\nname = \"f\"\ntype = \"file\"\npath = \"{}\"\n", dir.join("out.log").display()),
//!     "doc.toml".as_ref(),
//! )?;
//! let mut collector = Collector::new(&ring, cfg, None, |notice| eprintln!("{notice}"))?;
//! let control = Control::new();
//! control.request_shutdown(); // drains what is published, flushes, commits
//! let summary = collector.run(&control);
//! assert!(summary.unflushed.is_empty());
//! let out = std::fs::read_to_string(dir.join("out.log"))?;
//! assert!(out.contains(r#""msg":"hello""#));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bench_hooks;
mod chunk;
pub mod collector;
pub mod config;
mod ledger;
pub mod metrics;
mod metrics_http;
mod notice;
pub mod panic_hook;
mod pin;
mod queue;
mod resolver;
mod ring_dir;
mod sink;
pub mod stats;
pub mod status;

pub use chunk::ChunkGauge;
pub use collector::{Collector, Control, StartError, Summary, Unflushed, CHUNKS};
pub use config::{Config, ConfigError, Format, SinkConfig, SinkKind};
pub use notice::{Notice, Notify};
pub use queue::{MIN_CHARGE, WINDOW_BYTES};
pub use ring_dir::MAX_RINGS;
pub use sink::otlp::exporter_config;
pub use sink::SinkError;
