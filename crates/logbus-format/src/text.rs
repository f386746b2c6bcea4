//! The text form: `time LEVEL [service] target: message trace_id=…
//! span_id=… key=value …`, one line, control characters escaped, values
//! that need it quoted.

use logbus_ring::{RecordRef, Value};

use crate::escape::{any_word, put_json_str, put_text_clean, word_needs_quotes};
use crate::formatter::{carried, json_bound, severity_index, Checked, Formatter, LEVEL_NAMES};
use crate::json::put_json_value;
use crate::numbers::put_hex;
use crate::out::Out;

#[inline(always)]
pub(crate) fn record(
    f: &mut Formatter,
    out: &mut Vec<u8>,
    r: &RecordRef<'_>,
    service: Option<Checked<'_>>,
) {
    let service = service.or_else(|| carried(r));
    // SAFETY: the text form is never longer than the JSON form's bound.
    let mut w = unsafe { Out::new(out, json_bound(r, service.map(|s| s.name))) };
    f.put_rfc3339(&mut w, r.time_ns());
    w.byte(b' ');
    // The level's name padded to 6 bytes.
    w.word(TEXT_LEVELS[severity_index(r.severity()) / 4], 6);
    if let Some(s) = service {
        w.byte(b'[');
        match s.text_clean {
            Some(true) => w.put(s.name.as_bytes()),
            _ => put_text_clean(&mut w, s.name),
        }
        w.put(b"] ");
    }
    if !r.target().is_empty() {
        let target = r.target();
        if f.is_clean(0, target) {
            w.put(target.as_bytes());
        } else {
            put_text_clean(&mut w, target);
        }
        w.put(b": ");
    }
    put_text_clean(&mut w, r.message());
    if let Some(t) = r.trace_id() {
        w.put(b" trace_id=");
        put_hex(&mut w, &t);
    }
    if let Some(s) = r.span_id() {
        w.put(b" span_id=");
        put_hex(&mut w, &s);
    }
    for (i, (k, v)) in r.fields().enumerate() {
        w.byte(b' ');
        if f.is_clean(1 + i, k) {
            w.put(k.as_bytes());
        } else {
            put_text_clean(&mut w, k);
        }
        w.byte(b'=');
        match v {
            Value::Str(s) if s.is_empty() || any_word(s.as_bytes(), word_needs_quotes) => {
                put_json_str(&mut w, s)
            }
            Value::Str(s) => put_text_clean(&mut w, s),
            other => put_json_value(&mut w, other),
        }
    }
    if r.truncated() {
        w.put(b" (truncated)");
    }
    w.byte(b'\n');
    // SAFETY: `w` was made from `out` above, which was not touched since.
    unsafe { w.finish(out) };
}

/// The level names padded with spaces to 8 bytes (6 are written).
pub(crate) static TEXT_LEVELS: [[u8; 8]; 6] = {
    let mut t = [[b' '; 8]; 6];
    let mut l = 0;
    while l < 6 {
        let name = LEVEL_NAMES[l].as_bytes();
        let mut i = 0;
        while i < name.len() {
            t[l][i] = name[i];
            i += 1;
        }
        l += 1;
    }
    t
};
