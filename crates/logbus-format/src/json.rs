//! The JSON form: one object per line, keys in the order of the crate's
//! table, and field values as JSON values.

use logbus_ring::{RecordRef, Value};

use crate::escape::{put_json_str, put_quoted};
use crate::formatter::{carried, json_bound, severity_index, Checked, Formatter, LEVEL_NAMES};
use crate::numbers::{put_f64, put_hex, put_i64, put_u64};
use crate::out::Out;

#[inline(always)]
pub(crate) fn record(
    f: &mut Formatter,
    out: &mut Vec<u8>,
    r: &RecordRef<'_>,
    service: Option<Checked<'_>>,
    uid: Option<u32>,
) {
    let service = service.or_else(|| carried(r));
    // SAFETY: `json_bound` bounds everything written below.
    let mut w = unsafe { Out::new(out, json_bound(r, service.map(|s| s.name))) };
    w.put(b"{\"time\":\"");
    f.put_rfc3339(&mut w, r.time_ns());
    // `","level":"INFO","severity":9,"target":`, made once per severity.
    let (fragment, len) = &JSON_LEVELS[severity_index(r.severity())];
    w.fixed(fragment, *len as usize);
    let target = r.target();
    if f.is_clean(0, target) {
        put_quoted(&mut w, target);
    } else {
        put_json_str(&mut w, target);
    }
    w.put(b",\"msg\":");
    put_json_str(&mut w, r.message());
    w.put(b",\"pid\":");
    put_u64(&mut w, r.pid().into());
    if let Some(uid) = uid {
        w.put(b",\"uid\":");
        put_u64(&mut w, uid.into());
    }
    w.put(b",\"tid\":");
    put_u64(&mut w, r.tid().into());
    w.put(b",\"seq\":");
    put_u64(&mut w, r.seq());
    if let Some(t) = r.trace_id() {
        w.put(b",\"trace_id\":\"");
        put_hex(&mut w, &t);
        w.byte(b'"');
    }
    if let Some(s) = r.span_id() {
        w.put(b",\"span_id\":\"");
        put_hex(&mut w, &s);
        w.byte(b'"');
    }
    if let Some(s) = service {
        w.put(b",\"service\":");
        match s.json_clean {
            Some(true) => {
                w.byte(b'"');
                w.put(s.name.as_bytes());
                w.byte(b'"');
            }
            _ => put_json_str(&mut w, s.name),
        }
    }
    let mut first = true;
    for (i, (k, v)) in r.fields().enumerate() {
        w.put(if first { b",\"fields\":{" } else { b"," });
        first = false;
        if f.is_clean(1 + i, k) {
            put_quoted(&mut w, k);
        } else {
            put_json_str(&mut w, k);
        }
        w.byte(b':');
        put_json_value(&mut w, v);
    }
    if !first {
        w.byte(b'}');
    }
    if r.truncated() {
        w.put(b",\"truncated\":true");
    }
    w.put(b"}\n");
    // SAFETY: `w` was made from `out` above, which was not touched since.
    unsafe { w.finish(out) };
}

#[inline]
pub(crate) fn put_json_value(w: &mut Out, v: Value<'_>) {
    match v {
        Value::Str(s) => put_json_str(w, s),
        Value::I64(i) => put_i64(w, i),
        Value::U64(u) => put_u64(w, u),
        Value::F64(f) if f.is_finite() => put_f64(w, f),
        Value::F64(f) => w.put(if f.is_nan() {
            b"\"NaN\""
        } else if f > 0.0 {
            b"\"inf\""
        } else {
            b"\"-inf\""
        }),
        Value::Bool(b) => w.put(if b { b"true" } else { b"false" }),
    }
}

/// Appends `bytes` to `out` at `*n` (for the const tables).
const fn push(bytes: &[u8], out: &mut [u8; 48], n: &mut usize) {
    let mut i = 0;
    while i < bytes.len() {
        out[*n] = bytes[i];
        *n += 1;
        i += 1;
    }
}

/// Per severity 1-24: the JSON text from the end of `time` to the start of
/// `target`'s value, and its length.
pub(crate) static JSON_LEVELS: [([u8; 48], u8); 24] = {
    let mut t = [([0u8; 48], 0u8); 24];
    let mut s = 0;
    while s < 24 {
        let sev = s + 1;
        let mut out = [0u8; 48];
        let mut n = 0;
        push(b"\",\"level\":\"", &mut out, &mut n);
        push(LEVEL_NAMES[s / 4].as_bytes(), &mut out, &mut n);
        push(b"\",\"severity\":", &mut out, &mut n);
        if sev >= 10 {
            push(&[b'0' + (sev / 10) as u8], &mut out, &mut n);
        }
        push(&[b'0' + (sev % 10) as u8], &mut out, &mut n);
        push(b",\"target\":", &mut out, &mut n);
        t[s] = (out, n as u8);
        s += 1;
    }
    t
};
