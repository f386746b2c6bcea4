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
//! | `service` | the producer's service name, when its resource is known |
//! | `fields` | an object of the structured fields (types kept); left out when empty |
//! | `truncated` | `true`, only when something was cut |
//!
//! Text form: `time LEVEL target: message trace_id=… span_id=… key=value …`.
//!
//! Both writers append to a `Vec<u8>` (growing it at most once per record)
//! and allocate nothing else.
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

use std::cell::Cell;

use logbus_ring::{RecordRef, Value};

/// Writes into a `Vec<u8>` whose capacity was reserved up front, without a
/// capacity check (or a `memcpy` call for short pieces) per piece: the
/// collector formats millions of records a second and those checks and calls
/// were most of the cost.
struct Out {
    ptr: *mut u8,
    #[cfg(debug_assertions)]
    end: *mut u8,
}

impl Out {
    /// # Safety
    /// `out` must have at least `bound` bytes of spare capacity, and every
    /// write through the returned `Out` must stay within them.
    unsafe fn new(out: &mut Vec<u8>, bound: usize) -> Out {
        out.reserve(bound);
        let ptr = out.as_mut_ptr().add(out.len());
        Out {
            ptr,
            #[cfg(debug_assertions)]
            end: ptr.add(bound),
        }
    }

    /// Sets the length of `out` to cover everything written.
    ///
    /// # Safety
    /// `self` came from `Out::new(out, _)` and `out` was not touched since.
    unsafe fn finish(self, out: &mut Vec<u8>) {
        let len = self.ptr.offset_from(out.as_ptr()) as usize;
        out.set_len(len);
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        #[cfg(debug_assertions)]
        assert!(
            self.ptr as usize + bytes.len() <= self.end as usize,
            "format bound"
        );
        // SAFETY: `new`'s contract: the reserved bound covers every write (the
        // bound is computed from the record's size in `json_bound`).
        unsafe {
            logbus_ring::mem::copy_small(bytes.as_ptr(), self.ptr, bytes.len());
            self.ptr = self.ptr.add(bytes.len());
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.put(&[b]);
    }
}

/// An upper bound of the bytes `write_json` or `write_text` appends for `r`:
/// every string byte may become a 6-byte `\u00XX`, every field adds at most
/// 32 bytes of punctuation and number, and the fixed parts take under 400.
fn json_bound(r: &RecordRef<'_>, service: Option<&str>) -> usize {
    400 + 6 * (r.payload_len() + service.map_or(0, str::len)) + 40 * r.field_count()
}

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
    // SAFETY: `json_bound` bounds everything written below.
    let mut w = unsafe { Out::new(out, json_bound(r, service)) };
    w.put(b"{\"time\":\"");
    put_rfc3339(&mut w, r.time_ns());
    w.put(b"\",\"level\":\"");
    w.put(r.level().name().as_bytes());
    w.put(b"\",\"severity\":");
    put_u64(&mut w, r.severity().into());
    w.put(b",\"target\":");
    put_json_str(&mut w, r.target());
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
        put_json_str(&mut w, s);
    }
    let mut first = true;
    for (k, v) in r.fields() {
        w.put(if first { b",\"fields\":{" } else { b"," });
        first = false;
        put_json_str(&mut w, k);
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

/// Appends `r` as one readable line and a newline.
pub fn write_text(out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&str>) {
    // SAFETY: the text form is never longer than the JSON form's bound.
    let mut w = unsafe { Out::new(out, json_bound(r, service)) };
    put_rfc3339(&mut w, r.time_ns());
    w.byte(b' ');
    let name = r.level().name();
    w.put(name.as_bytes());
    w.put(&b"      "[..6 - name.len()]);
    if let Some(s) = service {
        w.byte(b'[');
        put_text_clean(&mut w, s);
        w.put(b"] ");
    }
    if !r.target().is_empty() {
        put_text_clean(&mut w, r.target());
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
    for (k, v) in r.fields() {
        w.byte(b' ');
        put_text_clean(&mut w, k);
        w.byte(b'=');
        match v {
            Value::Str(s)
                if s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'=') =>
            {
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
    // SAFETY: as in `write_json`.
    unsafe { w.finish(out) };
}

/// Control characters (a newline in a message, say) would break the one-line
/// form: write them escaped as in JSON, without the quotes.
fn put_text_clean(w: &mut Out, s: &str) {
    if s.bytes().any(|b| b < b' ' || b == 0x7f) {
        put_escaped(w, s.as_bytes(), false);
    } else {
        w.put(s.as_bytes());
    }
}

/// Appends the decimal digits of `v`, written in place from the last digit
/// back (two at a time). Formatting into a stack buffer first and copying it
/// out (as `itoa` does) made every integer a store-forwarding stall: wide
/// loads over freshly stored single bytes; four integers a record made that a
/// quarter of `write_json`'s time.
#[inline]
fn put_u64(w: &mut Out, mut v: u64) {
    let n = (v | 1).ilog10() as usize + 1;
    #[cfg(debug_assertions)]
    assert!(w.ptr as usize + n <= w.end as usize, "format bound");
    // SAFETY: `Out::new`'s contract: the reserved bound covers every write, and
    // `json_bound` allows 40 bytes per number; the `n` digits are written
    // exactly into `[ptr, ptr + n)`, from the end back.
    unsafe {
        let mut p = w.ptr.add(n);
        w.ptr = p;
        while v >= 100 {
            let pair = &DIGIT_PAIRS[(v % 100) as usize];
            v /= 100;
            p = p.sub(2);
            std::ptr::copy_nonoverlapping(pair.as_ptr(), p, 2);
        }
        if v >= 10 {
            std::ptr::copy_nonoverlapping(DIGIT_PAIRS[v as usize].as_ptr(), p.sub(2), 2);
        } else {
            *p.sub(1) = b'0' + v as u8;
        }
    }
}

#[inline]
fn put_i64(w: &mut Out, v: i64) {
    if v < 0 {
        w.byte(b'-');
    }
    put_u64(w, v.unsigned_abs());
}

fn put_json_value(w: &mut Out, v: Value<'_>) {
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

/// A finite float, shortest round-trip form (as `ryu`, which it falls back to).
///
/// Fast path for values with at most three decimals (latencies, ratios): if
/// `n / 1000.0 == f` for an integer `n`, the decimal `n/1000` reads back as
/// exactly `f` (division and parsing both round correctly), and no shorter
/// decimal can: two decimals of at most three places differ by 0.001, far more
/// than neighbouring doubles below 1e12. Written as ryu would: `12.5`, `3.0`.
#[inline]
fn put_f64(w: &mut Out, f: f64) {
    let scaled = f * 1000.0;
    // `scaled as i64` is exact below 1e15 (< 2^63); comparing it back is
    // `scaled.trunc() == scaled` without a call into libm.
    let n = scaled as i64;
    if f.abs() < 1e12 && n as f64 == scaled && scaled / 1000.0 == f {
        let (int, frac) = (n / 1000, (n % 1000).unsigned_abs());
        if int == 0 && f.is_sign_negative() {
            w.byte(b'-');
        }
        put_i64(w, int);
        w.byte(b'.');
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let keep = if frac % 100 == 0 {
            1
        } else if frac % 10 == 0 {
            2
        } else {
            3
        };
        w.put(&digits[..keep]);
        return;
    }
    w.put(ryu::Buffer::new().format_finite(f).as_bytes());
}

/// Whether any of the 8 bytes of `x` needs escaping in JSON: below 0x20,
/// `"` (0x22), `\` (0x5c) or DEL (0x7f). Bytes >= 0x80 (UTF-8) do not.
#[inline(always)]
fn word_needs_escape(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    (below_space | zero_in(x ^ (LO * 0x22)) | zero_in(x ^ (LO * 0x5c)) | zero_in(x ^ (LO * 0x7f)))
        != 0
}

/// Whether any byte of `b` needs escaping, checked a word at a time with no
/// byte loop for the tail: the last word overlaps the previous one, and a
/// string of 4 to 7 bytes is checked as its first and last 4 bytes together
/// (a byte may be looked at twice; that changes nothing).
#[inline(always)]
fn str_needs_escape(b: &[u8]) -> bool {
    let n = b.len();
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            if word_needs_escape(u64_at(i)) {
                return true;
            }
            i += 8;
        }
        i < n && word_needs_escape(u64_at(n - 8))
    } else if n >= 4 {
        word_needs_escape(u32_at(0) as u64 | (u32_at(n - 4) as u64) << 32)
    } else {
        b.iter().any(|&c| needs_escape(c))
    }
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// Appends `s` as a JSON string literal. Always inlined: `Out` then stays in
/// registers instead of going through memory around every call.
#[inline(always)]
fn put_json_str(w: &mut Out, s: &str) {
    w.byte(b'"');
    let bytes = s.as_bytes();
    // Most strings need no escaping: check 8 bytes at a time, copy in one go.
    if !str_needs_escape(bytes) {
        w.put(bytes);
    } else {
        put_escaped(w, bytes, true);
    }
    w.byte(b'"');
}

#[cold]
fn put_escaped(w: &mut Out, bytes: &[u8], _quoted: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        w.put(&bytes[start..i]);
        match b {
            b'"' => w.put(b"\\\""),
            b'\\' => w.put(b"\\\\"),
            b'\n' => w.put(b"\\n"),
            b'\r' => w.put(b"\\r"),
            b'\t' => w.put(b"\\t"),
            _ => w.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
        start = i + 1;
    }
    w.put(&bytes[start..]);
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

static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

fn put_hex(w: &mut Out, bytes: &[u8]) {
    for &b in bytes {
        w.put(&HEX_PAIRS[b as usize]);
    }
}

/// Appends bytes as lowercase hex.
pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    // SAFETY: two bytes per byte.
    let mut w = unsafe { Out::new(out, 2 * bytes.len()) };
    put_hex(&mut w, bytes);
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}

static DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

thread_local! {
    /// The last second formatted on this thread and its `YYYY-MM-DDTHH:MM:SS.`
    /// text: consecutive records are nearly always in the same second.
    static LAST_SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

fn put_rfc3339(w: &mut Out, ns: u64) {
    let secs = ns / 1_000_000_000;
    let nanos = (ns % 1_000_000_000) as u32;
    let prefix = LAST_SECOND
        .try_with(|last| {
            let (s, text) = last.get();
            if s == secs {
                return text;
            }
            let text = second_prefix(secs);
            last.set((secs, text));
            text
        })
        .unwrap_or_else(|_| second_prefix(secs));
    w.put(&prefix);
    // Nine digits of nanoseconds, two at a time.
    let hi = nanos / 10_000_000; // first two digits
    let mid = nanos / 100_000 % 100;
    let lo = nanos / 1_000 % 100;
    let lo2 = nanos / 10 % 100;
    let last = nanos % 10;
    w.put(&DIGIT_PAIRS[hi as usize]);
    w.put(&DIGIT_PAIRS[mid as usize]);
    w.put(&DIGIT_PAIRS[lo as usize]);
    w.put(&DIGIT_PAIRS[lo2 as usize]);
    w.put(&[b'0' + last as u8, b'Z']);
}

fn second_prefix(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut buf = *b"0000-00-00T00:00:00.";
    let put = |buf: &mut [u8; 20], at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 0, 4, y as u64);
    put(&mut buf, 5, 2, m as u64);
    put(&mut buf, 8, 2, d as u64);
    put(&mut buf, 11, 2, rem / 3600);
    put(&mut buf, 14, 2, rem % 3600 / 60);
    put(&mut buf, 17, 2, rem % 60);
    buf
}

/// Appends `ns` since the Unix epoch as RFC 3339 UTC with nanoseconds.
pub fn write_rfc3339(out: &mut Vec<u8>, ns: u64) {
    // SAFETY: 30 bytes exactly.
    let mut w = unsafe { Out::new(out, 30) };
    put_rfc3339(&mut w, ns);
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(s(|o| write_rfc3339(o, 0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            s(|o| write_rfc3339(o, 951_782_400_000_000_007)),
            "2000-02-29T00:00:00.000000007Z"
        );
        assert_eq!(
            s(|o| write_rfc3339(o, 1_795_629_599_999_999_999)),
            "2026-11-25T17:59:59.999999999Z"
        );
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let nasty = "q\"b\\n\nt\tc\u{1}d\u{7f}é";
        let out = s(|o| write_json_str(o, nasty));
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, nasty);
    }

    #[test]
    fn every_special_byte_at_every_position_is_escaped() {
        // The clean-string scan works 8 bytes at a time: put each byte that
        // needs escaping (and some that do not) at every offset of strings
        // long enough to cross word boundaries and leave tails.
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\u{0}', '\u{1f}', '\u{7f}', 'é', '€', ' ', '~',
        ];
        for len in 0..24 {
            for at in 0..len {
                for &c in &specials {
                    let mut t: String = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                    t.replace_range(
                        t.char_indices()
                            .nth(at)
                            .map(|(i, ch)| i..i + ch.len_utf8())
                            .unwrap(),
                        &c.to_string(),
                    );
                    let out = s(|o| write_json_str(o, &t));
                    let back: String =
                        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
                    assert_eq!(back, t);
                    assert!(
                        !out[1..out.len() - 1].bytes().any(|b| b < 0x20 || b == 0x7f),
                        "{out:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn floats_read_back_exactly_and_as_short_as_ryu() {
        let mut values = vec![
            0.0,
            -0.0,
            12.5,
            3.0,
            -3.0,
            0.001,
            -0.001,
            0.1,
            0.2,
            0.3,
            1e11 + 0.5,
            0.0001,
            1e12,
            1e15,
            123.456,
            -0.25,
        ];
        let mut x = 0.37_f64;
        for i in 0..20_000 {
            // Decimals of 0-4 places, products, and awkward binary fractions.
            values.push((i as f64) / 1000.0);
            values.push(-(i as f64) / 8.0);
            values.push((i as f64) * 0.1);
            x = (x * 3.7 + 0.13) % 1000.0;
            values.push(x);
        }
        for f in values {
            let ours = s(|o| write_json_value(o, Value::F64(f)));
            let theirs = ryu::Buffer::new().format_finite(f).to_string();
            let back: f64 = ours.parse().unwrap();
            assert!(
                back == f && back.is_sign_negative() == f.is_sign_negative(),
                "{f}: {ours}"
            );
            assert!(ours.len() <= theirs.len(), "{f}: ours {ours}, ryu {theirs}");
        }
    }

    #[test]
    fn integers_at_every_width_match_std() {
        let mut values = vec![0u64, 1, 9, u64::MAX, u64::MAX - 1, i64::MAX as u64];
        for d in 1..20 {
            let p = 10u64.pow(d);
            values.extend([p - 1, p, p + 1, p / 2 + 7]);
        }
        for v in values {
            assert_eq!(s(|o| write_json_value(o, Value::U64(v))), v.to_string());
            let i = v as i64;
            assert_eq!(s(|o| write_json_value(o, Value::I64(i))), i.to_string());
            let i = i.wrapping_neg();
            assert_eq!(s(|o| write_json_value(o, Value::I64(i))), i.to_string());
        }
        for i in [i64::MIN, i64::MIN + 1, -1, -10, -99, -100] {
            assert_eq!(s(|o| write_json_value(o, Value::I64(i))), i.to_string());
        }
    }

    #[test]
    fn non_finite_floats_stay_valid_json() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -0.0] {
            let out = s(|o| write_json_value(o, Value::F64(f)));
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }
}
