//! The `log` crate: a bridge into `tracing` (installed by [`crate::init`]) and a
//! standalone [`Logger`] for programs that use `log` without `tracing`.
//!
//! The bridge hands each record to `tracing` the way `tracing-log`'s
//! `LogTracer` does (so the subscriber's filter and spans apply), and first puts
//! the record's key/values into a thread-local that [`crate::LogbusLayer`] reads
//! back: `tracing-log` itself drops them.

use std::cell::RefCell;
use std::fmt::Write;

use log::kv::{self, VisitSource, VisitValue};
use logbus_ring::Event as RingEvent;
use tracing_log::AsTrace;

use crate::error::Error;
use crate::fields::{bounded, FieldBuf, Key, Val, EMPTY_FIELDS, MAX_FIELDS, MAX_VALUE};
use crate::layer::{current_otel_context, with_scratch};
use crate::producer::Producer;

/// OpenTelemetry severity number of a `log` level (TRACE 1 .. ERROR 17).
pub fn log_severity(level: log::Level) -> u8 {
    use logbus_ring::Level as L;
    match level {
        log::Level::Trace => L::Trace,
        log::Level::Debug => L::Debug,
        log::Level::Info => L::Info,
        log::Level::Warn => L::Warn,
        log::Level::Error => L::Error,
    }
    .severity()
}

struct Stash {
    active: bool,
    kv: FieldBuf,
}

thread_local! {
    static STASH: RefCell<Stash> = RefCell::new(Stash { active: false, kv: FieldBuf::with_capacity(1024) });
}

/// Adds the key/values of the `log` record being bridged on this thread, if any.
pub(crate) fn take_stashed_kv(fields: &mut FieldBuf) {
    let _ = STASH.try_with(|s| {
        if let Ok(s) = s.try_borrow() {
            if s.active {
                fields.merge_from(&s.kv);
            }
        }
    });
}

/// Copies a record's key/values into `buf` (typed where `log` says the type).
fn collect_kv(record: &log::Record<'_>, buf: &mut FieldBuf) {
    let _ = record.key_values().visit(&mut KvVisitor(buf));
}

struct KvVisitor<'a>(&'a mut FieldBuf);

impl<'kvs> VisitSource<'kvs> for KvVisitor<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        if self.0.is_full() {
            return Ok(());
        }
        let (a, b) = self.0.store_str(key.as_str());
        let _ = value.visit(ValueVisitor {
            buf: self.0,
            key: Key::Arena(a, b),
        });
        Ok(())
    }
}

struct ValueVisitor<'a> {
    buf: &'a mut FieldBuf,
    key: Key,
}

impl<'v> VisitValue<'v> for ValueVisitor<'_> {
    fn visit_any(&mut self, value: kv::Value<'_>) -> Result<(), kv::Error> {
        self.buf.push_fmt(self.key, format_args!("{value}"));
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.buf.push(self.key, Val::U64(value));
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.buf.push(self.key, Val::I64(value));
        Ok(())
    }
    fn visit_u128(&mut self, value: u128) -> Result<(), kv::Error> {
        match u64::try_from(value) {
            Ok(v) => self.visit_u64(v),
            Err(_) => {
                self.buf.push_fmt(self.key, format_args!("{value}"));
                Ok(())
            }
        }
    }
    fn visit_i128(&mut self, value: i128) -> Result<(), kv::Error> {
        match i64::try_from(value) {
            Ok(v) => self.visit_i64(v),
            Err(_) => {
                self.buf.push_fmt(self.key, format_args!("{value}"));
                Ok(())
            }
        }
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.buf.push(self.key, Val::F64(value));
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.buf.push(self.key, Val::Bool(value));
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.buf.push_str(self.key, value);
        Ok(())
    }
    fn visit_char(&mut self, value: char) -> Result<(), kv::Error> {
        self.buf.push_str(self.key, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }
}

/// The `log` → `tracing` bridge [`crate::init`] installs.
pub(crate) struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level().as_trace() <= tracing_core::LevelFilter::current()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let stashed = STASH
            .try_with(|s| match s.try_borrow_mut() {
                Ok(mut s) => {
                    s.kv.clear();
                    collect_kv(record, &mut s.kv);
                    s.active = true;
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        let _ = tracing_log::format_trace(record);
        if stashed {
            let _ = STASH.try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    s.active = false;
                }
            });
        }
    }

    fn flush(&self) {}
}

/// Level directives for [`Logger`], in `RUST_LOG` style: `info`,
/// `warn,my_crate=debug`, `my_crate::db=trace,off`. A directive for a target
/// applies to the target and everything below it (prefix match, the longest
/// one wins); without a bare level, other targets log ERROR only.
#[derive(Clone, Debug)]
pub struct LevelDirectives {
    default: log::LevelFilter,
    /// Longest target first.
    targets: Vec<(String, log::LevelFilter)>,
}

impl LevelDirectives {
    /// Parses directives.
    ///
    /// ```
    /// let d = logbus::LevelDirectives::parse("warn,app::db=debug").unwrap();
    /// assert!(d.enabled("app::db::pool", log::Level::Debug));
    /// assert!(!d.enabled("app::web", log::Level::Info));
    /// ```
    ///
    /// # Errors
    /// A message naming the directive that is not `level` or `target=level`.
    pub fn parse(s: &str) -> Result<LevelDirectives, String> {
        let mut default = None;
        let mut targets = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => {
                    let level = parse_level(level.trim())
                        .ok_or_else(|| format!("{part:?}: {level:?} is not a level"))?;
                    targets.push((target.trim().to_string(), level));
                }
                None => match parse_level(part) {
                    Some(level) => default = Some(level),
                    None if part
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_:-".contains(c)) =>
                    {
                        targets.push((part.to_string(), log::LevelFilter::Trace));
                    }
                    None => return Err(format!("{part:?} is neither a level nor a target")),
                },
            }
        }
        targets.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        Ok(LevelDirectives {
            default: default.unwrap_or(log::LevelFilter::Error),
            targets,
        })
    }

    /// Whether a record of `level` from `target` passes.
    pub fn enabled(&self, target: &str, level: log::Level) -> bool {
        let filter = self
            .targets
            .iter()
            .find(|(t, _)| target.starts_with(t.as_str()))
            .map_or(self.default, |&(_, l)| l);
        level <= filter
    }

    /// The most verbose level any directive lets through.
    pub fn max_level(&self) -> log::LevelFilter {
        self.targets
            .iter()
            .map(|&(_, l)| l)
            .fold(self.default, std::cmp::max)
    }
}

fn parse_level(s: &str) -> Option<log::LevelFilter> {
    match s.to_ascii_lowercase().as_str() {
        "off" => Some(log::LevelFilter::Off),
        "error" => Some(log::LevelFilter::Error),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "info" => Some(log::LevelFilter::Info),
        "debug" => Some(log::LevelFilter::Debug),
        "trace" => Some(log::LevelFilter::Trace),
        _ => None,
    }
}

/// A `log::Log` writing straight into the ring, for programs that use `log`
/// without `tracing`: message, target, level, key/values (typed), trace context
/// of the current OpenTelemetry context (feature `otel`). No allocation per record.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("logbus-doc-logger-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let logger = logbus::Builder::new()
///     .ring_path(dir.join("ring"))
///     .filter("debug")
///     .logger()?;
/// log::Log::log(&logger, &log::Record::builder()
///     .level(log::Level::Info)
///     .target("app")
///     .args(format_args!("hello"))
///     .build());
/// // or, for the whole program: logger.install()?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), logbus::Error>(())
/// ```
#[derive(Debug)]
pub struct Logger {
    producer: Producer,
    directives: LevelDirectives,
}

impl Logger {
    /// A logger writing through `producer`, filtering with `directives`.
    pub fn new(producer: Producer, directives: LevelDirectives) -> Logger {
        Logger {
            producer,
            directives,
        }
    }

    /// Installs this logger as the global `log` logger and sets `log`'s max level.
    ///
    /// # Errors
    /// [`Error::LoggerInstalled`] when a logger is installed already.
    pub fn install(self) -> Result<(), Error> {
        let max = self.directives.max_level();
        log::set_boxed_logger(Box::new(self)).map_err(|_| Error::LoggerInstalled)?;
        log::set_max_level(max);
        Ok(())
    }

    /// The producer records go through.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.directives.enabled(metadata.target(), metadata.level())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        with_scratch(|s| {
            s.message.clear();
            s.fields.clear();
            let args = record.args();
            match args.as_str() {
                Some(m) => bounded(&mut s.message, MAX_VALUE).push(m),
                None => {
                    let _ = bounded(&mut s.message, MAX_VALUE).write_fmt(*args);
                }
            }
            collect_kv(record, &mut s.fields);
            let trace = current_otel_context();
            let mut fields = EMPTY_FIELDS;
            let n = s.fields.fields(&mut fields);
            debug_assert!(n <= MAX_FIELDS);
            self.producer.emit(&RingEvent {
                severity: log_severity(record.level()),
                time_ns: 0,
                target: record.target(),
                message: &s.message,
                fields: &fields[..n],
                trace_id: trace.trace_id,
                span_id: trace.span_id,
                trace_flags: trace.flags,
            });
        });
    }

    fn flush(&self) {}
}
