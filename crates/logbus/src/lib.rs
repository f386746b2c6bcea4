//! The producer side of logbus: your program's `tracing` and `log` calls land in
//! the shared-memory ring that the logbus collector drains.
//!
//! ```no_run
//! if let Err(e) = logbus::init() {
//!     eprintln!("{e}"); // the program goes on, its logs go nowhere
//! }
//! tracing::info!(user = "ada", attempts = 3, "logged in");
//! log::warn!(disk = "sda"; "disk almost full");
//! ```
//!
//! [`init`] opens (or creates) the ring named by `LOGBUS_RING` (default
//! `/dev/shm/logbus`), installs a global `tracing` subscriber whose level filter
//! comes from `LOGBUS_LEVEL` (`RUST_LOG`-style directives, default `info`), and
//! bridges the `log` crate into it. For your own subscriber use [`layer`] or a
//! [`Builder`]; for programs with `log` only, [`Logger`]; to write records
//! directly (or from another language's binding), [`Producer`].
//!
//! # What a record carries
//! Message, target, level (OpenTelemetry severity: TRACE 1, DEBUG 5, INFO 9,
//! WARN 13, ERROR 17), time, pid, tid, the event's fields and its spans' fields
//! with their types (string, i64, u64, f64, bool; anything else formatted with
//! `Debug`), at most [`MAX_FIELDS`] of them, and the trace context of the
//! calling thread: the current OpenTelemetry context (feature `otel`, on by
//! default, which also sees spans of `tracing-opentelemetry`), else span fields
//! named `trace_id`/`span_id` (hex) or `traceparent` (W3C). No context, no ids.
//! Who wrote it (service name from the builder, `OTEL_SERVICE_NAME` or the
//! executable; version; host; command line) is written once per process into
//! the ring's resource table and referenced by every record.
//!
//! # Nothing is buffered in the process
//! A call returns after its record is in the shared-memory ring (or was refused
//! by the ring's overflow policy and counted). If the process is killed right
//! after `info!` returns, even by SIGKILL, the record is there for the
//! collector. That is not true of `tracing-appender`'s non-blocking writer or of
//! Python's `QueueHandler`, which hand records to a thread in the same process
//! and lose whatever it has not written yet.
//!
//! # The caller never waits
//! No lock, no system call and no heap allocation per record (for up to
//! [`MAX_FIELDS`] fields; span fields are copied when the span is created, which
//! allocates then). When the ring is full its overflow policy applies: the
//! record, or older low-severity ones, are dropped and counted. Each thread makes
//! a writer of its own on its first record; writers share the whole ring, so
//! any number of threads log at once. Safe from async code: nothing blocks the
//! runtime (unless the ring was created in lossless mode, `wait_ms > 0`, where
//! a record that finds the ring full waits up to that long for room).
//!
//! # fork()
//! A child process after `fork()` notices on its first record (its ring handle
//! and writers are the parent's), reopens the ring, registers its own resource
//! and makes its own writer: its records carry its own pid.
#![deny(missing_docs)]

mod error;
mod fields;
mod layer;
mod log_bridge;
pub mod producer;

use std::path::PathBuf;

use tracing_log::AsLog;
use tracing_subscriber::filter::{EnvFilter, Filtered};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

pub use error::Error;
pub use fields::{MAX_FIELDS, MAX_VALUE};
pub use layer::{severity_of, LogbusLayer};
pub use log_bridge::{log_severity, LevelDirectives, Logger};
pub use logbus_ring::{Event, Field, Ring, RingOptions, Value};
pub use producer::{Outcome, Producer};

/// The environment variable holding the level filter directives.
pub const LEVEL_ENV: &str = "LOGBUS_LEVEL";
/// The filter when neither the builder nor [`LEVEL_ENV`] gives one.
pub const DEFAULT_LEVEL: &str = "info";

/// The layer [`layer`] and [`Builder::layer`] return: a [`LogbusLayer`] with its
/// own level filter, so that it filters only what goes to the ring.
pub type FilteredLayer<S> = Filtered<LogbusLayer, EnvFilter, S>;

/// Installs the global `tracing` subscriber writing to the ring (`LOGBUS_RING`,
/// default `/dev/shm/logbus`, created if missing), filtered by `LOGBUS_LEVEL`
/// (default `info`), and bridges `log` records into it.
///
/// # Errors
/// [`Error::Filter`] for bad directives, [`Error::Open`] when the ring cannot
/// be opened or created, [`Error::SubscriberInstalled`] /
/// [`Error::LoggerInstalled`] when a global subscriber / logger exists. Never panics.
pub fn init() -> Result<(), Error> {
    Builder::new().init()
}

/// A layer for a subscriber of your own: the ring from `LOGBUS_RING`, the
/// filter from `LOGBUS_LEVEL` (applied to this layer only).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("logbus-doc-fn-layer-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::env::set_var("LOGBUS_RING", dir.join("ring"));
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry()
///     .with(logbus::layer()?)
///     .with(tracing_subscriber::fmt::layer());
/// # drop(subscriber);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), logbus::Error>(())
/// ```
///
/// # Errors
/// As [`Builder::layer`].
pub fn layer<S>() -> Result<FilteredLayer<S>, Error>
where
    S: tracing_core::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    Builder::new().layer()
}

/// Configures a producer, a layer, a logger or the global set-up.
///
/// Every setting has a default: ring path from `LOGBUS_RING` (else
/// `/dev/shm/logbus`), filter from `LOGBUS_LEVEL` (else `info`), service name
/// from `OTEL_SERVICE_NAME` (else the executable's name), no version.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    ring_path: Option<PathBuf>,
    ring_options: Option<RingOptions>,
    filter: Option<String>,
    service: Option<String>,
    version: Option<String>,
}

impl Builder {
    /// All defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The ring file to write to.
    pub fn ring_path(mut self, path: impl Into<PathBuf>) -> Builder {
        self.ring_path = Some(path.into());
        self
    }

    /// Geometry and overflow policy used if the ring has to be created.
    pub fn ring_options(mut self, options: RingOptions) -> Builder {
        self.ring_options = Some(options);
        self
    }

    /// Level filter directives (`RUST_LOG` style), instead of `LOGBUS_LEVEL`.
    pub fn filter(mut self, directives: impl Into<String>) -> Builder {
        self.filter = Some(directives.into());
        self
    }

    /// `service.name` of this process, instead of `OTEL_SERVICE_NAME` / the executable.
    pub fn service_name(mut self, name: impl Into<String>) -> Builder {
        self.service = Some(name.into());
        self
    }

    /// `service.version` of this process.
    pub fn service_version(mut self, version: impl Into<String>) -> Builder {
        self.version = Some(version.into());
        self
    }

    /// The filter directives in force: the builder's, else `LOGBUS_LEVEL`, else `info`.
    pub fn directives(&self) -> String {
        self.filter
            .clone()
            .or_else(|| std::env::var(LEVEL_ENV).ok())
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_LEVEL.to_string())
    }

    /// Opens the ring and registers this process's resource.
    ///
    /// # Errors
    /// [`Error::Open`] when the ring cannot be opened or created.
    pub fn producer(&self) -> Result<Producer, Error> {
        let path = logbus_ring::ring_path(self.ring_path.as_deref());
        let identity = producer::Identity::detect(self.service.clone(), self.version.clone());
        Producer::with_identity(
            &path,
            self.ring_options.clone().unwrap_or_default(),
            identity,
        )
    }

    /// The `EnvFilter` for [`Builder::directives`].
    ///
    /// # Errors
    /// [`Error::Filter`] when the directives do not parse.
    pub fn env_filter(&self) -> Result<EnvFilter, Error> {
        let directives = self.directives();
        EnvFilter::builder()
            .parse(&directives)
            .map_err(|e| Error::Filter {
                reason: e.to_string(),
                directives,
            })
    }

    /// The layer without any filter: everything the subscriber enables is written.
    ///
    /// # Errors
    /// [`Error::Open`] when the ring cannot be opened or created.
    pub fn build_layer(&self) -> Result<LogbusLayer, Error> {
        Ok(LogbusLayer::new(self.producer()?))
    }

    /// The layer with its own level filter ([`Builder::directives`]).
    ///
    /// # Errors
    /// [`Error::Filter`], [`Error::Open`].
    pub fn layer<S>(&self) -> Result<FilteredLayer<S>, Error>
    where
        S: tracing_core::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let filter = self.env_filter()?;
        Ok(self.build_layer()?.with_filter(filter))
    }

    /// A `log::Log` writing straight to the ring (see [`Logger`]).
    ///
    /// # Errors
    /// [`Error::Filter`], [`Error::Open`].
    pub fn logger(&self) -> Result<Logger, Error> {
        let directives = self.directives();
        let parsed = LevelDirectives::parse(&directives)
            .map_err(|reason| Error::Filter { directives, reason })?;
        Ok(Logger::new(self.producer()?, parsed))
    }

    /// Installs the global `tracing` subscriber (registry, filter, this layer)
    /// and bridges `log` into it (see [`init`]).
    ///
    /// # Errors
    /// As [`init`].
    pub fn init(&self) -> Result<(), Error> {
        let filter = self.env_filter()?;
        let layer = self.build_layer()?;
        let subscriber = tracing_subscriber::registry().with(filter).with(layer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| Error::SubscriberInstalled)?;
        static BRIDGE: log_bridge::Bridge = log_bridge::Bridge;
        log::set_logger(&BRIDGE).map_err(|_| Error::LoggerInstalled)?;
        log::set_max_level(tracing_core::LevelFilter::current().as_log());
        Ok(())
    }
}
