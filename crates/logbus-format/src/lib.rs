//! The logbus record schema, shared by `logbus dump --json` and the
//! collector's stdout and file sinks.
//!
//! JSON form: one object per line, keys in this order, absent ones left out:
//!
//! | key | value |
//! |---|---|
//! | `time` | RFC 3339, UTC, nanoseconds: `2026-11-25T18:00:00.123456789Z` |
//! | `level` | `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL` |
//! | `severity` | the OpenTelemetry severity number, 1-24 |
//! | `target` | the logger name |
//! | `msg` | the message |
//! | `pid` | producer process |
//! | `uid` | the owner of the ring it came from: the user whose process wrote it (collector and `logbus dump`; [`write_json_as`]) |
//! | `tid` | producer thread |
//! | `seq` | unique in the ring, increasing in emit order for each producer |
//! | `trace_id`, `span_id` | lowercase hex; left out when absent |
//! | `service` | the producer's service name, when its resource is known (from the ring's resource table, or from the record's own `service.name` field when the table had no room for its process) |
//! | `fields` | an object of the structured fields (types kept); left out when empty |
//! | `truncated` | `true`, only when something was cut |
//!
//! Text form: `time LEVEL target: message trace_id=… span_id=… key=value …`.
//!
//! Both writers append to a `Vec<u8>` (growing it at most once per record)
//! and allocate nothing else.
//!
//! The modules: `json.rs` and `text.rs` write the two forms; `formatter.rs`
//! holds what they share per record ([`Formatter`], [`Service`], the upper
//! bound of a record's bytes, the level of a severity); `out.rs` is the
//! unchecked writer they append through; `escape.rs`, `numbers.rs` (numbers
//! and hex) and `time.rs` write the pieces.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("logbus-fmt-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! use logbus_ring::{Batch, Consumer, Event, Ring};
//! let ring = Ring::open(dir.join("ring")).unwrap();
//! ring.writer().unwrap().emit(&Event { time_ns: 1, ..Event::new(9, "hi") }).unwrap();
//! let mut c = Consumer::acquire(&ring).unwrap();
//! let mut batch = Batch::new();
//! c.poll(&mut batch, 10);
//! let mut line = Vec::new();
//! logbus_format::write_json(&mut line, &batch.get(0).unwrap(), None);
//! assert!(line.starts_with(br#"{"time":"1970-01-01T00:00:00.000000001Z","level":"INFO","severity":9,"#));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![deny(missing_docs)]

mod escape;
mod formatter;
mod json;
mod numbers;
mod out;
mod text;
mod time;

#[cfg(test)]
mod tests;

use std::cell::Cell;

use logbus_ring::{RecordRef, Value};

pub use formatter::{Formatter, Service};

use crate::escape::put_json_str;
use crate::formatter::Checked;
use crate::json::put_json_value;
use crate::numbers::put_hex;
use crate::out::Out;

/// Appends `r` as one JSON object and a newline.
pub fn write_json(out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&str>) {
    write_json_as(out, r, service, None)
}

/// Appends `r` as one JSON object and a newline, with `"uid"`: the owner of
/// the ring it came from, when known.
pub fn write_json_as(
    out: &mut Vec<u8>,
    r: &RecordRef<'_>,
    service: Option<&str>,
    uid: Option<u32>,
) {
    with_formatter(|f| json::record(f, out, r, service.map(Checked::unchecked), uid));
}

/// Appends `r` as one readable line and a newline.
pub fn write_text(out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&str>) {
    with_formatter(|f| text::record(f, out, r, service.map(Checked::unchecked)));
}

thread_local! {
    /// The free functions' [`Formatter`]: the last second formatted on this thread.
    static FORMATTER: Cell<Formatter> = const { Cell::new(Formatter::new()) };
}

#[inline(always)]
fn with_formatter(go: impl FnOnce(&mut Formatter)) {
    let mut f = FORMATTER.try_with(Cell::get).unwrap_or_default();
    go(&mut f);
    let _ = FORMATTER.try_with(|c| c.set(f));
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // SAFETY: a string literal takes at most 6 bytes per byte plus quotes.
    let mut w = unsafe { Out::new(out, 6 * s.len() + 2) };
    put_json_str(&mut w, s);
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}

/// Appends a JSON value for a field value (non-finite floats as strings).
pub fn write_json_value(out: &mut Vec<u8>, v: Value<'_>) {
    let bound = match v {
        Value::Str(s) => 6 * s.len() + 2,
        _ => 40,
    };
    // SAFETY: `bound` covers the value (numbers and words are under 40 bytes).
    let mut w = unsafe { Out::new(out, bound) };
    put_json_value(&mut w, v);
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}

/// Appends bytes as lowercase hex.
pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    // SAFETY: two bytes per byte, and 8 of slack for the word stores.
    let mut w = unsafe { Out::new(out, 2 * bytes.len() + 8) };
    put_hex(&mut w, bytes);
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}

/// Appends `ns` since the Unix epoch as RFC 3339 UTC with nanoseconds.
pub fn write_rfc3339(out: &mut Vec<u8>, ns: u64) {
    // SAFETY: 30 bytes, and 8 of slack for the word stores.
    let mut w = unsafe { Out::new(out, 38) };
    with_formatter(|f| f.put_rfc3339(&mut w, ns));
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}
