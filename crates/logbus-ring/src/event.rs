//! What a producer hands the ring: an [`Event`] borrowed from the caller, and
//! the [`Plan`] of how its parts fit a record (what is cut, and where).

use crate::layout::RECORD_HEADER;

/// Longest target kept; longer ones are cut and flagged truncated.
const MAX_TARGET: usize = 1024;

/// A field value, borrowed from the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

/// One structured key/value of an event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    /// The key (cut to 255 bytes).
    pub key: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// What a producer emits; everything is borrowed, nothing is allocated.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// OpenTelemetry severity number 1-24 (out-of-range values are clamped).
    pub severity: u8,
    /// ns since the Unix epoch; 0 means "now".
    pub time_ns: u64,
    /// The logger name / module path.
    pub target: &'a str,
    /// The message.
    pub message: &'a str,
    /// Structured fields, written in order.
    pub fields: &'a [Field<'a>],
    /// W3C trace id, if the event belongs to a trace.
    pub trace_id: Option<[u8; 16]>,
    /// W3C span id, if known.
    pub span_id: Option<[u8; 8]>,
    /// W3C trace flags.
    pub trace_flags: u8,
}

impl<'a> Event<'a> {
    /// An event with a severity and a message, now, no target, no fields, no trace.
    pub fn new(severity: u8, message: &'a str) -> Event<'a> {
        Event {
            severity,
            time_ns: 0,
            target: "",
            message,
            fields: &[],
            trace_id: None,
            span_id: None,
            trace_flags: 0,
        }
    }
}

/// What happened to an emitted record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emitted {
    /// The record is in the ring; `evicted` older low-severity records made room.
    Written {
        /// Records evicted to make room.
        evicted: u32,
    },
    /// The overflow policy refused the record; it is counted as dropped.
    Dropped,
}

/// The largest `i <= max` that is a char boundary of `s` (and `<= s.len()`).
#[inline]
pub(crate) fn floor_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Sizes of the parts of a record, after truncation.
pub(crate) struct Plan {
    pub len: usize,
    pub target_len: usize,
    pub msg_len: usize,
    pub nfields: usize,
    /// Bytes the last kept field's string value may use (only it may be cut).
    last_cap: usize,
    pub truncated: bool,
}

impl Plan {
    #[inline]
    pub fn new(ev: &Event<'_>, max_record: usize, max_message: usize) -> Plan {
        let target_len = floor_boundary(ev.target, MAX_TARGET);
        let mut truncated = target_len < ev.target.len();
        let mut len = RECORD_HEADER + target_len;
        let mut nfields = 0;
        let mut last_cap = u16::MAX as usize;
        // Fields first, each whole if it fits, so that the message (usually the
        // largest part) is what gets cut. Keep at least a quarter for the message.
        let field_budget = max_record - max_record / 4 - len;
        let mut used = 0;
        for f in ev.fields.iter().take(u16::MAX as usize) {
            let key = floor_boundary(f.key, 255);
            truncated |= key < f.key.len();
            let fixed = 2 + key;
            let size = fixed
                + match f.value {
                    Value::Str(s) => 2 + s.len().min(u16::MAX as usize),
                    Value::Bool(_) => 1,
                    _ => 8,
                };
            if used + size > field_budget {
                truncated = true;
                if let Value::Str(s) = f.value {
                    // Keep a cut version of this last string field if 16+ bytes fit.
                    let room = field_budget.saturating_sub(used + fixed + 2);
                    if room >= 16 {
                        last_cap = room;
                        used += fixed + 2 + floor_boundary(s, room);
                        nfields += 1;
                    }
                }
                break;
            }
            if let Value::Str(s) = f.value {
                truncated |= s.len() > u16::MAX as usize;
            }
            used += size;
            nfields += 1;
        }
        len += used;
        let msg_cap = (max_record - len).min(max_message);
        let msg_len = floor_boundary(ev.message, msg_cap);
        truncated |= msg_len < ev.message.len();
        Plan {
            len: len + msg_len,
            target_len,
            msg_len,
            nfields,
            last_cap,
            truncated,
        }
    }

    /// Bytes string field `i` may use.
    #[inline]
    pub fn value_cap(&self, i: usize) -> usize {
        if i + 1 == self.nfields {
            self.last_cap
        } else {
            u16::MAX as usize
        }
    }
}
