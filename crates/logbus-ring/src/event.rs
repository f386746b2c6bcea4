//! What a producer hands the ring: an [`Event`] borrowed from the caller, and
//! the [`Plan`] of how its parts fit a record (what is cut, and where).

use crate::layout::{kind, RecordHeader, RECORD_HEADER};

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
    cut_boundary(s, max)
}

/// [`floor_boundary`] of a string longer than `max`: out of line, so that
/// the emit path of a string that fits is one comparison.
#[cold]
#[inline(never)]
fn cut_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Most fields a record holds (its `nfields` is a `u16`); the rest are cut
/// and the record flagged truncated.
const MAX_FIELDS: usize = u16::MAX as usize;

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

/// How the fields of an event fit their budget (see [`Plan::new`]).
struct FieldsPlan {
    /// Bytes the kept fields take.
    used: usize,
    nfields: usize,
    last_cap: usize,
    truncated: bool,
}

impl FieldsPlan {
    /// Fields first, each whole if it fits in `budget`, so that the message
    /// (usually the largest part) is what gets cut.
    fn new(fields: &[Field<'_>], budget: usize) -> FieldsPlan {
        let mut truncated = fields.len() > MAX_FIELDS;
        let mut nfields = 0;
        let mut last_cap = u16::MAX as usize;
        let mut used = 0;
        for f in &fields[..fields.len().min(MAX_FIELDS)] {
            let key = floor_boundary(f.key, 255);
            truncated |= key < f.key.len();
            let fixed = 2 + key;
            let size = fixed
                + match f.value {
                    Value::Str(s) => 2 + s.len().min(u16::MAX as usize),
                    Value::Bool(_) => 1,
                    _ => 8,
                };
            if used + size > budget {
                truncated = true;
                if let Value::Str(s) = f.value {
                    // Keep a cut version of this last string field if 16+ bytes fit.
                    let room = budget.saturating_sub(used + fixed + 2);
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
        FieldsPlan {
            used,
            nfields,
            last_cap,
            truncated,
        }
    }
}

impl Plan {
    /// The plan of `ev` in a record of at most `max_record` bytes (at least
    /// twice the header and [`MAX_TARGET`]: a ring's smallest block is 4 KiB)
    /// with a message of at most `max_message`.
    #[inline]
    pub fn new(ev: &Event<'_>, max_record: usize, max_message: usize) -> Plan {
        let (target, message) = (ev.target.len(), ev.message.len());
        // The common event: no fields, a target and a message under their
        // caps (the message's is at its least with the longest target): it
        // fits whole, nothing to cut or look at.
        if ev.fields.is_empty()
            && target <= MAX_TARGET
            && message <= max_message.min(max_record.saturating_sub(RECORD_HEADER + MAX_TARGET))
        {
            return Plan {
                len: RECORD_HEADER + target + message,
                target_len: target,
                msg_len: message,
                nfields: 0,
                last_cap: u16::MAX as usize,
                truncated: false,
            };
        }
        Plan::cut(ev, max_record, max_message)
    }

    /// [`Plan::new`] of an event with fields, or with a part over its cap.
    #[inline(never)]
    fn cut(ev: &Event<'_>, max_record: usize, max_message: usize) -> Plan {
        let target_len = floor_boundary(ev.target, MAX_TARGET);
        let mut truncated = target_len < ev.target.len();
        let mut len = RECORD_HEADER + target_len;
        let mut nfields = 0;
        let mut last_cap = u16::MAX as usize;
        if !ev.fields.is_empty() {
            // Keep at least a quarter for the message.
            let f = FieldsPlan::new(ev.fields, max_record - max_record / 4 - len);
            len += f.used;
            nfields = f.nfields;
            last_cap = f.last_cap;
            truncated |= f.truncated;
        }
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

    /// Lays the record out at `at`: the header `hdr` without its first word
    /// (the stamp, which the caller stores last, with Release), then target,
    /// message and fields as this plan cut them. Writes exactly `self.len`
    /// bytes from `at + 8`; `hdr`'s lengths are the plan's.
    ///
    /// # Safety
    /// `at .. at + self.len` is writable and nobody else's for the duration
    /// (a reserved, unstamped record of a block, or a private buffer); `self`
    /// was made by [`Plan::new`] for `ev`.
    #[inline(always)]
    pub unsafe fn write(&self, at: *mut u8, hdr: &RecordHeader, ev: &Event<'_>) {
        debug_assert_eq!(hdr.len as usize, self.len);
        // SAFETY (every `put` below): each writes within `at + 8 .. at +
        // self.len`, by the caller's contract, as the sum of the pieces is
        // exactly the plan's length (`Plan::new` sized them the same way;
        // checked by the debug assertion at the end).
        let mut o = unsafe { put(at, &bytemuck::bytes_of(hdr)[8..], 8) };
        // SAFETY: `Plan::new` for `ev` (the caller's contract) made
        // `target_len <= ev.target.len()` and `msg_len <= ev.message.len()`.
        let (target, message) = unsafe {
            (
                ev.target.as_bytes().get_unchecked(..self.target_len),
                ev.message.as_bytes().get_unchecked(..self.msg_len),
            )
        };
        o = unsafe { put(at, target, o) };
        o = unsafe { put(at, message, o) };
        for (i, f) in ev.fields[..self.nfields].iter().enumerate() {
            let key = &f.key.as_bytes()[..floor_boundary(f.key, 255)];
            let (kind, scalar): (u8, [u8; 8]) = match f.value {
                Value::Str(_) => (kind::STR, [0; 8]),
                Value::I64(v) => (kind::I64, v.to_le_bytes()),
                Value::U64(v) => (kind::U64, v.to_le_bytes()),
                Value::F64(v) => (kind::F64, v.to_le_bytes()),
                Value::Bool(v) => (kind::BOOL, [v as u8, 0, 0, 0, 0, 0, 0, 0]),
            };
            o = unsafe { put(at, &[key.len() as u8, kind], o) };
            o = unsafe { put(at, key, o) };
            o = match f.value {
                Value::Str(s) => {
                    let cut = floor_boundary(s, self.value_cap(i));
                    let o2 = unsafe { put(at, &(cut as u16).to_le_bytes(), o) };
                    unsafe { put(at, &s.as_bytes()[..cut], o2) }
                }
                Value::Bool(_) => unsafe { put(at, &scalar[..1], o) },
                _ => unsafe { put(at, &scalar, o) },
            };
        }
        debug_assert_eq!(o, self.len);
    }
}

/// Copies `bytes` to `off` bytes past `at`; returns the offset after them.
///
/// # Safety
/// `at + off .. at + off + bytes.len()` is writable and ours alone.
#[inline(always)]
unsafe fn put(at: *mut u8, bytes: &[u8], off: usize) -> usize {
    // SAFETY: by the caller's contract; `bytes` is a distinct borrow.
    unsafe { crate::mem::copy_small(bytes.as_ptr(), at.add(off), bytes.len()) };
    off + bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizing `Plan::new` did before its fast path for events without
    /// fields (issue 19): the new one must agree with it on every event.
    fn reference(ev: &Event<'_>, max_record: usize, max_message: usize) -> Plan {
        fn floor(s: &str, max: usize) -> usize {
            if s.len() <= max {
                return s.len();
            }
            let mut i = max;
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        }
        let target_len = floor(ev.target, MAX_TARGET);
        let mut truncated = target_len < ev.target.len();
        let mut len = RECORD_HEADER + target_len;
        let mut nfields = 0;
        let mut last_cap = u16::MAX as usize;
        let field_budget = max_record - max_record / 4 - len;
        let mut used = 0;
        for f in ev.fields.iter().take(u16::MAX as usize) {
            let key = floor(f.key, 255);
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
                    let room = field_budget.saturating_sub(used + fixed + 2);
                    if room >= 16 {
                        last_cap = room;
                        used += fixed + 2 + floor(s, room);
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
        let msg_len = floor(ev.message, (max_record - len).min(max_message));
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

    /// A string of `n` characters mixing 1-, 2-, 3- and 4-byte ones, so that
    /// a cut falls inside a character as often as not.
    fn text(n: usize, seed: u64) -> String {
        let chars = ['a', 'é', '€', '𝄞', 'z'];
        (0..n)
            .map(|i| chars[((seed >> (i % 16)) as usize + i) % chars.len()])
            .collect()
    }

    /// Every plan (lengths, cuts, the truncated flag) is the reference's, for
    /// events with and without fields, targets and messages around their
    /// caps with cuts inside multi-byte characters, and field lists that
    /// overflow the budget; and the record `write` lays out is exactly the
    /// plan's length and passes the reader's validation.
    #[test]
    fn plan_agrees_with_the_reference_and_writes_valid_records() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut buf = vec![0u64; (64 << 10) / 8];
        for round in 0..400 {
            let target = text(
                [0, 12, 300, 1023, 1024, 1025, 2000][next() as usize % 7],
                next(),
            );
            let message = text([0, 5, 100, 4000, 20000][next() as usize % 5], next());
            let strings: Vec<String> = (0..8)
                .map(|_| text([0, 3, 300, 10000, 40000][next() as usize % 5], next()))
                .collect();
            let nfields = if round % 3 == 0 {
                0
            } else {
                next() as usize % 9
            };
            let fields: Vec<Field<'_>> = (0..nfields)
                .map(|i| Field {
                    key: &strings[(i + 1) % 8][..floor_boundary(&strings[(i + 1) % 8], 300)],
                    value: match next() % 5 {
                        0 => Value::Str(&strings[i % 8]),
                        1 => Value::I64(-(i as i64)),
                        2 => Value::U64(i as u64),
                        3 => Value::F64(i as f64),
                        _ => Value::Bool(i % 2 == 0),
                    },
                })
                .collect();
            let ev = Event {
                target: &target,
                fields: &fields,
                ..Event::new(9, &message)
            };
            for (max_record, max_message) in [(4096, 16384), (32768, 16384), (32768, 100)] {
                let got = Plan::new(&ev, max_record, max_message);
                let want = reference(&ev, max_record, max_message);
                let sizes = |p: &Plan| {
                    (
                        p.len,
                        p.target_len,
                        p.msg_len,
                        p.nfields,
                        p.last_cap,
                        p.truncated,
                    )
                };
                assert_eq!(sizes(&got), sizes(&want), "round {round} {max_record}");
                assert!(got.len <= max_record);
                let hdr = RecordHeader {
                    len: got.len as u32,
                    msg_len: got.msg_len as u32,
                    target_len: got.target_len as u16,
                    nfields: got.nfields as u16,
                    severity: 9,
                    ..RecordHeader::default()
                };
                let at = buf.as_mut_ptr() as *mut u8;
                // SAFETY: `buf` is 64 KiB, more than `max_record`, and ours;
                // the plan was made for `ev`.
                unsafe { got.write(at, &hdr, &ev) };
                let bytes: &[u8] = bytemuck::cast_slice(&buf);
                let body = &bytes[RECORD_HEADER..got.len];
                assert!(crate::record::validate(&hdr, body), "round {round}");
                assert_eq!(&bytes[8..RECORD_HEADER], &bytemuck::bytes_of(&hdr)[8..]);
            }
        }
    }

    /// A record holds at most `u16::MAX` fields: more are cut, and the
    /// record says so (the plan used to drop them without the flag).
    #[test]
    fn more_fields_than_a_record_holds_are_cut_and_flagged() {
        let fields = vec![
            Field {
                key: "",
                value: Value::Bool(true),
            };
            MAX_FIELDS + 5
        ];
        let ev = Event {
            fields: &fields,
            ..Event::new(9, "m")
        };
        let plan = Plan::new(&ev, 1 << 24, 16384);
        assert_eq!(plan.nfields, MAX_FIELDS);
        assert!(plan.truncated);
        let exact = Event {
            fields: &fields[..MAX_FIELDS],
            ..ev
        };
        let plan = Plan::new(&exact, 1 << 24, 16384);
        assert_eq!(plan.nfields, MAX_FIELDS);
        assert!(!plan.truncated);
    }
}
