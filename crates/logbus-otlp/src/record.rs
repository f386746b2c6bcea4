//! The records handed to the exporter, and their mapping to OpenTelemetry log records.
//!
//! | logbus                       | OTLP `LogRecord` / `Resource`                                   |
//! |------------------------------|-----------------------------------------------------------------|
//! | `severity` (1-24)            | `severity_number` (0, *unspecified*, when outside 1-24)         |
//! | `severity_text`              | `severity_text`                                                 |
//! | `body`                       | `body`, a string value                                          |
//! | `target`                     | the *instrumentation scope name* (`logbus` when the target is empty); no attribute |
//! | `attributes`                 | `attributes`, types kept: `Str` string, `I64` int, `F64` double, `Bool` bool; `U64` int when it fits in `i64`, else its decimal string |
//! | `trace_id`, `span_id`, `trace_flags` | `trace_id`, `span_id`, `flags`; only with a trace id; a missing span id is sent as 8 zero bytes |
//! | `time_ns`                    | `time_unix_nano` (0 = unknown stays 0)                           |
//! | `observed_ns`                | `observed_time_unix_nano` (0 = now)                              |
//! | resource `service_name`      | `service.name` (`unknown_service` when empty, as the SDKs do)   |
//! | resource `service_version`   | `service.version`, when not empty                               |
//! | resource `host_name`         | `host.name`, when not empty                                     |
//! | resource `pid`               | `process.pid` (int), when not 0                                 |
//! | resource `command`           | `process.command_line`, when not empty                          |
//! | resource `uid`               | `process.user.id` (int): the owner of the ring the record came from |
//!
//! The target becomes the scope name because that is what OpenTelemetry's own log
//! bridges do (a Rust target names the module that logged, the closest thing to an
//! instrumentation scope), and back ends group and filter by scope already.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Severity};
use opentelemetry::{Key, KeyValue, SpanId, TraceFlags, TraceId};
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::Resource;

/// The process a record came from. Records of one resource are sent together.
///
/// A record whose producer registered no resource carries one with an empty
/// `service_name` (it is sent as `unknown_service`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OtlpResource {
    /// `service.name`; empty when unknown.
    pub service_name: String,
    /// `service.version`; empty when unknown.
    pub service_version: String,
    /// `host.name`; empty when unknown.
    pub host_name: String,
    /// `process.pid`; 0 when unknown.
    pub pid: u32,
    /// `process.command_line`; empty when unknown.
    pub command: String,
    /// `process.user.id`: the uid of the ring's owner, whose processes wrote
    /// the record; `None` when unknown.
    pub uid: Option<u32>,
}

/// The value of one record attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer (OTLP has no unsigned type: see the module docs).
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

/// One log record, owned, ready to export.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpRecord {
    /// When the event happened, nanoseconds since the Unix epoch; 0 when unknown.
    pub time_ns: u64,
    /// When logbus saw it (the collector's read time), nanoseconds since the Unix
    /// epoch; 0 means "now".
    pub observed_ns: u64,
    /// OpenTelemetry severity number, 1 (TRACE) to 24 (FATAL4).
    pub severity: u8,
    /// The level name, `"INFO"`...
    pub severity_text: &'static str,
    /// The message.
    pub body: String,
    /// Where it was logged (a module path); becomes the instrumentation scope name.
    pub target: String,
    /// The structured fields, in order.
    pub attributes: Vec<(String, AttrValue)>,
    /// W3C trace id, when the event happened inside a trace.
    pub trace_id: Option<[u8; 16]>,
    /// W3C span id.
    pub span_id: Option<[u8; 8]>,
    /// W3C trace flags (bit 0: sampled).
    pub trace_flags: u8,
    /// The producing process; shared by its records.
    pub resource: Arc<OtlpResource>,
}

/// The scope name used for records with an empty target.
pub const DEFAULT_SCOPE: &str = "logbus";

impl OtlpResource {
    /// The OpenTelemetry resource, with the attributes of the module docs.
    pub(crate) fn to_sdk(&self) -> Resource {
        let mut attributes = Vec::with_capacity(5);
        let service = if self.service_name.is_empty() {
            "unknown_service".to_string()
        } else {
            self.service_name.clone()
        };
        attributes.push(KeyValue::new("service.name", service));
        if !self.service_version.is_empty() {
            attributes.push(KeyValue::new(
                "service.version",
                self.service_version.clone(),
            ));
        }
        if !self.host_name.is_empty() {
            attributes.push(KeyValue::new("host.name", self.host_name.clone()));
        }
        if self.pid != 0 {
            attributes.push(KeyValue::new("process.pid", i64::from(self.pid)));
        }
        if !self.command.is_empty() {
            attributes.push(KeyValue::new("process.command_line", self.command.clone()));
        }
        if let Some(uid) = self.uid {
            attributes.push(KeyValue::new("process.user.id", i64::from(uid)));
        }
        Resource::builder_empty()
            .with_attributes(attributes)
            .build()
    }
}

impl AttrValue {
    fn to_any(&self) -> AnyValue {
        match self {
            AttrValue::Str(s) => AnyValue::String(s.clone().into()),
            AttrValue::I64(v) => AnyValue::Int(*v),
            AttrValue::U64(v) => match i64::try_from(*v) {
                Ok(v) => AnyValue::Int(v),
                // Out of OTLP's int range: the decimal string keeps every digit.
                Err(_) => AnyValue::String(v.to_string().into()),
            },
            AttrValue::F64(v) => AnyValue::Double(*v),
            AttrValue::Bool(v) => AnyValue::Boolean(*v),
        }
    }
}

/// The OpenTelemetry severity of an OTel severity number.
fn severity(number: u8) -> Option<Severity> {
    use Severity::*;
    const ALL: [Severity; 24] = [
        Trace, Trace2, Trace3, Trace4, Debug, Debug2, Debug3, Debug4, Info, Info2, Info3, Info4,
        Warn, Warn2, Warn3, Warn4, Error, Error2, Error3, Error4, Fatal, Fatal2, Fatal3, Fatal4,
    ];
    ALL.get(usize::from(number).checked_sub(1)?).copied()
}

fn system_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

impl OtlpRecord {
    /// Fills `blank` (a fresh SDK record) with this record.
    pub(crate) fn fill(&self, mut record: SdkLogRecord) -> SdkLogRecord {
        if let Some(severity) = severity(self.severity) {
            record.set_severity_number(severity);
        }
        record.set_severity_text(self.severity_text);
        record.set_body(AnyValue::String(self.body.clone().into()));
        if !self.target.is_empty() {
            record.set_target(self.target.clone());
        }
        if self.time_ns != 0 {
            record.set_timestamp(system_time(self.time_ns));
        }
        // The OTLP encoder requires an observed time.
        record.set_observed_timestamp(if self.observed_ns == 0 {
            SystemTime::now()
        } else {
            system_time(self.observed_ns)
        });
        if let Some(trace_id) = self.trace_id {
            let span_id = self.span_id.unwrap_or([0; 8]);
            record.set_trace_context(
                TraceId::from_bytes(trace_id),
                SpanId::from_bytes(span_id),
                Some(TraceFlags::new(self.trace_flags)),
            );
        }
        for (key, value) in &self.attributes {
            record.add_attribute(Key::new(key.clone()), value.to_any());
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_severity_number_maps_to_its_variant() {
        assert_eq!(severity(0), None);
        assert_eq!(severity(1), Some(Severity::Trace));
        assert_eq!(severity(9), Some(Severity::Info));
        assert_eq!(severity(17), Some(Severity::Error));
        assert_eq!(severity(24), Some(Severity::Fatal4));
        assert_eq!(severity(25), None);
        for n in 1..=24u8 {
            assert_eq!(severity(n).unwrap() as u8, n);
        }
    }

    #[test]
    fn big_unsigned_values_become_decimal_strings() {
        assert_eq!(AttrValue::U64(7).to_any(), AnyValue::Int(7));
        assert_eq!(
            AttrValue::U64(u64::MAX).to_any(),
            AnyValue::String(u64::MAX.to_string().into())
        );
    }
}
