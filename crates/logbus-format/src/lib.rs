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

    /// Stores all `N` bytes of `bytes` and keeps the first `n <= N`, as
    /// [`word`](Self::word) does for 8.
    #[inline(always)]
    fn fixed<const N: usize>(&mut self, bytes: &[u8; N], n: usize) {
        debug_assert!(n <= N);
        #[cfg(debug_assertions)]
        assert!(self.ptr as usize + N <= self.end as usize, "format bound");
        // SAFETY: as in `word`: the reserved bound covers `N` bytes here
        // (`json_bound`'s slack is hundreds of bytes; checked in debug builds).
        unsafe {
            (self.ptr as *mut [u8; N]).write_unaligned(*bytes);
            self.ptr = self.ptr.add(n);
        }
    }

    /// Stores the 8 bytes of `word` (first byte first in memory) and keeps
    /// the first `n <= 8` of them: one store instead of a copy. The bytes
    /// after the `n` kept ones are overwritten by what comes next (the
    /// reserved bound leaves room for them: every record ends with more than
    /// 8 bytes of fixed text).
    #[inline(always)]
    fn word(&mut self, word: [u8; 8], n: usize) {
        debug_assert!(n <= 8);
        #[cfg(debug_assertions)]
        assert!(self.ptr as usize + 8 <= self.end as usize, "format bound");
        // SAFETY: `new`'s contract: the reserved bound covers 8 bytes here
        // (`json_bound` has hundreds of bytes of slack past the longest
        // line; the debug assertion above checks it).
        unsafe {
            (self.ptr as *mut [u8; 8]).write_unaligned(word);
            self.ptr = self.ptr.add(n);
        }
    }
}

/// An upper bound of the bytes `write_json` or `write_text` appends for `r`:
/// every string byte may become a 6-byte `\u00XX`, every field adds at most
/// 32 bytes of punctuation and number, and the fixed parts take under 400.
fn json_bound(r: &RecordRef<'_>, service: Option<&str>) -> usize {
    400 + 6 * (r.payload_len() + service.map_or(0, str::len)) + 40 * r.field_count()
}

/// Formats records as [`write_json`] and [`write_text`] do, keeping the
/// `YYYY-MM-DDTHH:MM:SS.` text of the last second it formatted: records of a
/// batch are nearly all in the same second. One per formatting loop (the
/// collector makes one per chunk and format); the free functions keep theirs
/// per thread.
#[derive(Clone, Copy, Debug)]
pub struct Formatter {
    second: u64,
    /// The second's text, padded to 24 bytes (3 words).
    prefix: [u8; 24],
    /// The last target and first field keys found to need no escaping:
    /// the same target and keys come back record after record.
    clean: [Clean; CLEAN_SLOTS],
}

/// Slots of [`Formatter::clean`]: the target, then the first field keys.
const CLEAN_SLOTS: usize = 4;

/// A string of at most 16 bytes known to need no escaping in JSON (so no
/// control character either), by content: its length and [`short_words`].
#[derive(Clone, Copy, Debug)]
struct Clean {
    len: u8,
    words: [u64; 2],
}

impl Clean {
    /// Matches no string (lengths are at most 16).
    const NONE: Clean = Clean {
        len: u8::MAX,
        words: [0; 2],
    };
}

/// The bytes of a string of at most 16 bytes in two words, losslessly given
/// its length: 8 to 16 bytes as the first and the last 8 (overlapping), 4
/// to 7 as the first and last 4, 1 to 3 as the first, middle and last byte.
#[inline(always)]
fn short_words(b: &[u8]) -> [u64; 2] {
    let n = b.len();
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    if n >= 8 {
        [u64_at(0), u64_at(n - 8)]
    } else if n >= 4 {
        [u32_at(0) as u64 | (u32_at(n - 4) as u64) << 32, 0]
    } else if n > 0 {
        [
            b[0] as u64 | (b[n / 2] as u64) << 8 | (b[n - 1] as u64) << 16,
            0,
        ]
    } else {
        [0; 2]
    }
}

impl Formatter {
    /// Whether `s` is the clean string last seen in `slot`, else whether it
    /// is clean (remembered if it is short).
    #[inline(always)]
    fn is_clean(&mut self, slot: usize, s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() > 16 || slot >= CLEAN_SLOTS {
            return !str_needs_escape(b);
        }
        let words = short_words(b);
        let c = &mut self.clean[slot];
        if c.len as usize == b.len() && c.words == words {
            return true;
        }
        let clean = !str_needs_escape(b);
        if clean {
            *c = Clean {
                len: b.len() as u8,
                words,
            };
        }
        clean
    }
}

impl Default for Formatter {
    fn default() -> Formatter {
        Formatter::new()
    }
}

impl Formatter {
    /// A formatter with nothing cached.
    pub const fn new() -> Formatter {
        Formatter {
            second: u64::MAX,
            prefix: [0; 24],
            clean: [Clean::NONE; CLEAN_SLOTS],
        }
    }

    /// Appends `r` as one JSON object and a newline (as [`write_json_as`]:
    /// with `"uid"` when `uid` is given).
    #[inline]
    pub fn json(
        &mut self,
        out: &mut Vec<u8>,
        r: &RecordRef<'_>,
        service: Option<&Service<'_>>,
        uid: Option<u32>,
    ) {
        json(self, out, r, service.map(Service::checked), uid)
    }

    /// Appends `r` as one readable line and a newline (as [`write_text`]).
    #[inline]
    pub fn text(&mut self, out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&Service<'_>>) {
        text(self, out, r, service.map(Service::checked))
    }

    /// `ns` as RFC 3339 (30 bytes), from the cached second when it is the same.
    #[inline(always)]
    fn put_rfc3339(&mut self, w: &mut Out, ns: u64) {
        let secs = ns / 1_000_000_000;
        let nanos = (ns - secs * 1_000_000_000) as u32;
        if secs != self.second {
            self.set_second(secs);
        }
        let p = &self.prefix;
        let at = |i: usize| -> [u8; 8] { p[i..i + 8].try_into().unwrap_or([0; 8]) };
        w.word(at(0), 8);
        w.word(at(8), 8);
        w.word(at(16), 4);
        // Nine digits of nanoseconds: the first, then eight at once.
        let first = nanos / 100_000_000;
        w.byte(b'0' + first as u8);
        w.word(eight_digits(nanos - first * 100_000_000), 8);
        w.byte(b'Z');
    }

    #[cold]
    fn set_second(&mut self, secs: u64) {
        self.second = secs;
        self.prefix[..20].copy_from_slice(&second_prefix(secs));
    }
}

/// A service name checked once for bytes to escape, for the many records of
/// one producer (see [`Formatter::json`]).
#[derive(Clone, Copy, Debug)]
pub struct Service<'a> {
    name: &'a str,
    /// No byte needs escaping in JSON.
    json_clean: bool,
    /// No control character (the text form).
    text_clean: bool,
}

impl<'a> Service<'a> {
    /// `name`, checked.
    pub fn new(name: &'a str) -> Service<'a> {
        Service {
            name,
            json_clean: !str_needs_escape(name.as_bytes()),
            text_clean: !any_word(name.as_bytes(), word_has_control),
        }
    }

    fn checked(&self) -> Checked<'a> {
        Checked {
            name: self.name,
            json_clean: Some(self.json_clean),
            text_clean: Some(self.text_clean),
        }
    }
}

/// A service name as the formatting functions get it: what is known of it.
#[derive(Clone, Copy)]
struct Checked<'a> {
    name: &'a str,
    json_clean: Option<bool>,
    text_clean: Option<bool>,
}

impl<'a> Checked<'a> {
    fn unchecked(name: &'a str) -> Checked<'a> {
        Checked {
            name,
            json_clean: None,
            text_clean: None,
        }
    }
}

/// The service a record carries itself (its producer found no room in the
/// ring's resource table; see `logbus_ring::carried_service`). Cold: records
/// whose resource is known never get here.
#[cold]
fn carried<'a>(r: &RecordRef<'a>) -> Option<Checked<'a>> {
    logbus_ring::carried_service(r).map(Checked::unchecked)
}

/// The eight decimal digits of `v < 10^8`, zero-padded, most significant
/// first, computed in one register (two 4-digit halves, then four 2-digit
/// quarters, then eight digits, each split by a multiply and shift that
/// divides every lane at once).
#[inline(always)]
fn eight_digits(v: u32) -> [u8; 8] {
    debug_assert!(v < 100_000_000);
    let v = v as u64;
    let hi = v / 10_000;
    let lo = v - hi * 10_000;
    // Lanes of 32 bits, the more significant half first (in memory order).
    let x = hi | lo << 32;
    // x / 100 per lane: exact for lanes below 10,000 (x * 10486 >> 20).
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = x - hundreds * 100;
    // Lanes of 16 bits: [hundreds, rest] per half.
    let x = hundreds | x << 16;
    // x / 10 per 16-bit lane: exact for lanes below 100 (x * 103 >> 10).
    let tens = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    let x = x - tens * 10;
    // Lanes of 8 bits: [tens, units] per quarter.
    let digits = tens | x << 8;
    (digits | 0x3030_3030_3030_3030).to_le_bytes()
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
    with_formatter(|f| json(f, out, r, service.map(Checked::unchecked), uid));
}

/// Appends `r` as one readable line and a newline.
pub fn write_text(out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&str>) {
    with_formatter(|f| text(f, out, r, service.map(Checked::unchecked)));
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

#[inline(always)]
fn json(
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

#[inline(always)]
fn text(f: &mut Formatter, out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<Checked<'_>>) {
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
    // SAFETY: as in `write_json`.
    unsafe { w.finish(out) };
}

/// Control characters (a newline in a message, say) would break the one-line
/// form: write them escaped as in JSON, without the quotes.
#[inline(always)]
fn put_text_clean(w: &mut Out, s: &str) {
    if any_word(s.as_bytes(), word_has_control) {
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
    let n = decimal_digits(v);
    #[cfg(debug_assertions)]
    assert!(w.ptr as usize + n <= w.end as usize, "format bound");
    // SAFETY: `Out::new`'s contract: the reserved bound covers every write, and
    // `json_bound` allows 40 bytes per number; `n` is exactly `v`'s digit
    // count (`decimal_digits`, checked against `ilog10` by a test), so the
    // digits are written exactly into `[ptr, ptr + n)`, from the end back.
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

/// The number of decimal digits of `v` (1 for 0): from its bit length,
/// `floor(bits * log10(2))` (1233 / 4096 is log10(2) low by 2e-6, never
/// enough to be off at 64 bits) is the digit count of either `v` or a number
/// just below the next power of ten, which one comparison tells apart.
/// About 6 instructions, where `ilog10` takes 20-25.
#[inline(always)]
fn decimal_digits(v: u64) -> usize {
    const POW10: [u64; 20] = {
        let mut p = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            p[i] = p[i - 1] * 10;
            i += 1;
        }
        p
    };
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let t = (bits * 1233) >> 12;
    t + ((v | 1) >= POW10[t]) as usize
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
        // The decimals from a table: `.` and three digits, and how many of
        // those four bytes to keep (trailing zeros dropped, one digit kept).
        let [dot, d0, d1, d2, keep] = DECIMALS[frac as usize % 1000];
        w.word([dot, d0, d1, d2, 0, 0, 0, 0], keep as usize);
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

/// Whether any byte of `x` is a control character (below 0x20, or DEL):
/// what the text form escapes.
#[inline(always)]
fn word_has_control(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    let del = (x ^ (LO * 0x7f)).wrapping_sub(LO) & !(x ^ (LO * 0x7f)) & HI;
    (below_space | del) != 0
}

/// Whether any byte of `x` makes a text-form field value need quotes: a space
/// or below, `"` or `=`.
#[inline(always)]
fn word_needs_quotes(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let to_space = x.wrapping_sub(LO * 0x21) & !x & HI;
    (to_space | zero_in(x ^ (LO * 0x22)) | zero_in(x ^ (LO * 0x3d))) != 0
}

/// Whether `hit` finds anything in the words of `b`, checked a word at a
/// time with no byte loop for the tail: the last word overlaps the previous
/// one, and a string of 4 to 7 bytes is checked as its first and last 4 bytes
/// together, one of 1 to 3 bytes as its first, middle and last byte (a byte
/// may be looked at twice; that changes nothing). The padding added to short
/// strings is `a`, which no check finds.
///
/// Each `hit` is exact as a whole-word "any": its subtract-and-mask tests
/// may flag a byte wrongly only above a byte that really matches (a borrow),
/// never in a word without one.
#[inline(always)]
fn any_word(b: &[u8], hit: impl Fn(u64) -> bool) -> bool {
    let n = b.len();
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    const PAD: u64 = 0x6161_6161_6161_6161; // "aaaaaaaa"
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            if hit(u64_at(i)) {
                return true;
            }
            i += 8;
        }
        i < n && hit(u64_at(n - 8))
    } else if n >= 4 {
        hit(u32_at(0) as u64 | (u32_at(n - 4) as u64) << 32)
    } else if n > 0 {
        let three = b[0] as u64 | (b[n / 2] as u64) << 8 | (b[n - 1] as u64) << 16;
        hit(three | (PAD << 24))
    } else {
        false
    }
}

/// Whether any byte of `b` needs escaping in a JSON string.
#[inline(always)]
fn str_needs_escape(b: &[u8]) -> bool {
    any_word(b, word_needs_escape)
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// Appends `s`, known to need no escaping, between quotes.
#[inline(always)]
fn put_quoted(w: &mut Out, s: &str) {
    w.byte(b'"');
    w.put(s.as_bytes());
    w.byte(b'"');
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

#[inline(always)]
fn put_hex(w: &mut Out, bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(4);
    for c in &mut chunks {
        w.word(hex_word(u32::from_be_bytes([c[0], c[1], c[2], c[3]])), 8);
    }
    for &b in chunks.remainder() {
        w.put(&HEX_PAIRS[b as usize]);
    }
}

/// The 8 lowercase hex digits of `v`, most significant first, computed in
/// one register: the nibbles spread one per byte, then turned into digits
/// ('0' + n, plus 39 more for n > 9, which lands on 'a'..'f').
#[inline(always)]
fn hex_word(v: u32) -> [u8; 8] {
    let x = v as u64;
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    let x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // 0x01 in each byte whose nibble is above 9 (adding 6 carries into bit 4).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// Appends bytes as lowercase hex.
pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    // SAFETY: two bytes per byte, and 8 of slack for the word stores.
    let mut w = unsafe { Out::new(out, 2 * bytes.len() + 8) };
    put_hex(&mut w, bytes);
    // SAFETY: `w` was made from `out` just above.
    unsafe { w.finish(out) };
}

/// The table index of a severity (1-24; validated, clamped all the same).
#[inline(always)]
fn severity_index(severity: u8) -> usize {
    (severity.clamp(1, 24) - 1) as usize
}

/// The level names of severities 1-4, 5-8, ... 21-24 (OpenTelemetry's bands,
/// as `logbus_ring::Level::from_severity`).
const LEVEL_NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

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
static JSON_LEVELS: [([u8; 48], u8); 24] = {
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

/// The level names padded with spaces to 8 bytes (6 are written).
static TEXT_LEVELS: [[u8; 8]; 6] = {
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

/// For `f` in 0..1000: `.`, the three digits of `f`, and the bytes of
/// those to write: ryu's form of a float's decimals (`.5`, `.25`, `.125`,
/// `.0`).
static DECIMALS: [[u8; 5]; 1000] = {
    let mut t = [[0u8; 5]; 1000];
    let mut f = 0;
    while f < 1000 {
        let keep = if f % 100 == 0 {
            2
        } else if f % 10 == 0 {
            3
        } else {
            4
        };
        t[f] = [
            b'.',
            b'0' + (f / 100) as u8,
            b'0' + (f / 10 % 10) as u8,
            b'0' + (f % 10) as u8,
            keep,
        ];
        f += 1;
    }
    t
};

static DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

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
    // SAFETY: 30 bytes, and 8 of slack for the word stores.
    let mut w = unsafe { Out::new(out, 38) };
    with_formatter(|f| f.put_rfc3339(&mut w, ns));
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
    /// `n` iterations of a spread of values, a hundredth under Miri (which
    /// runs these tests too, checking every access, a thousand times slower).
    fn spread(n: usize) -> usize {
        if cfg!(miri) {
            n / 100
        } else {
            n
        }
    }

    /// `decimal_digits` agrees with `ilog10` at and around every power of
    /// ten and two, at the ends, and on a spread of other values.
    #[test]
    fn decimal_digits_match_ilog10() {
        let expect = |v: u64| (v | 1).ilog10() as usize + 1;
        let mut vs = vec![0, 1, u64::MAX, u64::MAX - 1];
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            vs.extend([p - 1, p, p + 1]);
            p = next;
        }
        vs.extend([p - 1, p, p + 1]);
        for b in 0..64 {
            let q = 1u64 << b;
            vs.extend([q - 1, q, q + 1]);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..spread(100_000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vs.extend([x, x >> (x % 64)]);
        }
        for v in vs {
            assert_eq!(super::decimal_digits(v), expect(v), "{v}");
        }
    }

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
        // Under Miri, one length ending in each part of a word.
        let lens: Vec<usize> = if cfg!(miri) {
            vec![1, 9, 20]
        } else {
            (0..24).collect()
        };
        for len in lens {
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
        for i in 0..spread(20_000) {
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

    /// The per-slot memory of clean short strings answers as the check
    /// itself, over a stream of repeated, changed, escaped and long strings.
    #[test]
    fn remembered_clean_strings_answer_as_the_check() {
        let mut f = Formatter::new();
        let alphabet = b"ab\"\\\n\x7fz ";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut last: Vec<String> = vec![String::new(); CLEAN_SLOTS + 1];
        for _ in 0..spread(200_000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = (x % (CLEAN_SLOTS as u64 + 1)) as usize;
            // Often the same string again, or one byte changed, else a new one.
            let s = match (x >> 8) % 4 {
                0 | 1 => last[slot].clone(),
                2 if !last[slot].is_empty() => {
                    let mut b = last[slot].clone().into_bytes();
                    let at = (x >> 16) as usize % b.len();
                    b[at] = alphabet[(x >> 24) as usize % alphabet.len()];
                    String::from_utf8(b).unwrap()
                }
                _ => {
                    let len = (x >> 32) as usize % 19;
                    (0..len)
                        .map(|i| {
                            let c = (x >> (i % 8 * 8)) as usize;
                            if c.is_multiple_of(5) {
                                alphabet[c % alphabet.len()] as char
                            } else {
                                (b'a' + (c % 26) as u8) as char
                            }
                        })
                        .collect()
                }
            };
            assert_eq!(
                f.is_clean(slot, &s),
                !str_needs_escape(s.as_bytes()),
                "{s:?}"
            );
            last[slot] = s;
        }
    }

    /// The per-severity tables say what the level and severity say.
    #[test]
    fn level_tables_match_the_level_of_every_severity() {
        for sev in 1..=24u8 {
            let name = logbus_ring::Level::from_severity(sev).unwrap().name();
            let (fragment, len) = &JSON_LEVELS[severity_index(sev)];
            assert_eq!(
                &fragment[..*len as usize],
                format!("\",\"level\":\"{name}\",\"severity\":{sev},\"target\":").as_bytes()
            );
            assert_eq!(
                &TEXT_LEVELS[severity_index(sev) / 4][..6],
                format!("{name:<6}").as_bytes()
            );
        }
    }

    /// The digit and hex words against `format!`, across every lane boundary.
    #[test]
    fn eight_digits_and_hex_words_match_format() {
        let mut values: Vec<u32> = (0..spread(10_000) as u32).collect();
        values.extend((0..spread(10_000) as u32).map(|i| i * 10_000 + 9_999 - i));
        values.extend((0..100_000_000).step_by(99_991 * (100_000 / spread(100_000))));
        values.extend([99_999_999, 10_000_000, 9_999_999, 12_345_678, 87_654_321]);
        for v in values {
            assert_eq!(&eight_digits(v), format!("{v:08}").as_bytes(), "{v}");
        }
        let mut x = 0x9e37_79b9u32;
        for i in 0..spread(100_000) as u32 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            for v in [x, i, i << 16, u32::MAX - i, 0x0a0a_0a0a ^ i] {
                assert_eq!(&hex_word(v), format!("{v:08x}").as_bytes(), "{v:x}");
            }
        }
        let id: Vec<u8> = (0..=255u8).collect();
        for len in 0..24 {
            let ours = s(|o| write_hex(o, &id[200..200 + len]));
            let theirs: String = id[200..200 + len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(ours, theirs);
        }
    }

    /// The cached second prefix, across second, minute, day, month, year and
    /// leap-day boundaries, in both directions, against an uncached computation.
    #[test]
    fn cached_time_prefix_follows_every_second_boundary() {
        let reference = |ns: u64| {
            let secs = ns / 1_000_000_000;
            let nanos = ns % 1_000_000_000;
            let p = second_prefix(secs);
            format!("{}{nanos:09}Z", std::str::from_utf8(&p).unwrap())
        };
        let mut f = Formatter::new();
        let mut instants = Vec::new();
        for base in [
            0u64,
            951_782_399,   // 2000-02-28T23:59:59
            951_868_799,   // 2000-02-29T23:59:59
            1_795_629_599, // 2026-11-25T17:59:59
            1_798_761_599, // 2026-12-31T23:59:59
            4_102_444_799, // 2099-12-31T23:59:59
        ] {
            for ns in [0, 1, 999_999_999, 123_456_789, 100_000_000, 99_999_999] {
                instants.push(base * 1_000_000_000 + ns);
                instants.push((base + 1) * 1_000_000_000 + ns);
            }
        }
        let back: Vec<u64> = instants.iter().rev().copied().collect();
        instants.extend(back);
        for ns in instants {
            let mut out = Vec::new();
            // SAFETY: 30 bytes and the 8 bytes of slack of the word stores.
            let mut w = unsafe { Out::new(&mut out, 38) };
            f.put_rfc3339(&mut w, ns);
            // SAFETY: `w` was made from `out` just above.
            unsafe { w.finish(&mut out) };
            assert_eq!(String::from_utf8(out).unwrap(), reference(ns), "{ns}");
            assert_eq!(s(|o| write_rfc3339(o, ns)), reference(ns), "{ns}");
        }
    }

    /// The word-at-a-time checks against a byte loop, for every byte value
    /// at every position of strings of 0 to 20 bytes (short strings take the
    /// 1-3 and 4-7 byte paths, longer ones the overlapping last word).
    #[test]
    fn word_checks_match_byte_checks() {
        type Check = (fn(u64) -> bool, fn(u8) -> bool);
        let checks: [Check; 3] = [
            (word_needs_escape, needs_escape),
            (word_has_control, |b| b < b' ' || b == 0x7f),
            (word_needs_quotes, |b| b <= b' ' || b == b'"' || b == b'='),
        ];
        // Every byte value; under Miri the boundaries of each class only.
        let bytes: Vec<u8> = if cfg!(miri) {
            vec![
                0, b'\n', 0x1f, b' ', b'!', b'"', b'=', b'\\', b'a', 0x7e, 0x7f, 0x80, 0xc3, 0xff,
            ]
        } else {
            (0..=255).collect()
        };
        // Under Miri, a length ending in each part of a word, one fill.
        let (lens, fills): (Vec<usize>, &[u8]) = if cfg!(miri) {
            (vec![0, 2, 5, 8, 13, 20], b"a")
        } else {
            ((0..=20).collect(), &[b'a', b'~', 0xc3, b' '])
        };
        for (word, byte) in checks {
            for &len in &lens {
                for at in 0..len.max(1) {
                    for &v in &bytes {
                        for &fill in fills {
                            let mut b = vec![fill; len];
                            if len > 0 {
                                b[at] = v;
                            }
                            assert_eq!(any_word(&b, word), b.iter().any(|&c| byte(c)), "{b:?}");
                        }
                    }
                }
            }
        }
    }

    /// The text form's fast paths give what the byte-by-byte rules say:
    /// control characters escaped, values with spaces, quotes or `=` quoted.
    #[test]
    fn text_form_quotes_and_escapes_as_the_byte_rules_say() {
        for v in [
            "plain",
            "a b",
            "a=b",
            "q\"",
            "tab\t",
            "del\u{7f}x",
            "é",
            "",
            "0123456789=",
            "x",
        ] {
            let quoted = v.is_empty() || v.bytes().any(|b| b <= b' ' || b == b'"' || b == b'=');
            let mut want = String::new();
            if quoted {
                want = s(|o| write_json_str(o, v));
            } else if v.bytes().any(|b| b < b' ' || b == 0x7f) {
                // SAFETY: a string takes at most 6 bytes per byte.
                let mut out = Vec::new();
                let mut w = unsafe { Out::new(&mut out, 6 * v.len()) };
                put_escaped(&mut w, v.as_bytes(), false);
                // SAFETY: `w` was made from `out` just above.
                unsafe { w.finish(&mut out) };
                want = String::from_utf8(out).unwrap();
            } else {
                want.push_str(v);
            }
            let mut out = Vec::new();
            // SAFETY: as in `write_text`.
            let mut w = unsafe { Out::new(&mut out, 6 * v.len() + 40) };
            match Value::Str(v) {
                Value::Str(s) if s.is_empty() || any_word(s.as_bytes(), word_needs_quotes) => {
                    put_json_str(&mut w, s)
                }
                Value::Str(s) => put_text_clean(&mut w, s),
                _ => unreachable!(),
            }
            // SAFETY: `w` was made from `out` just above.
            unsafe { w.finish(&mut out) };
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v:?}");
        }
    }

    #[test]
    fn non_finite_floats_stay_valid_json() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -0.0] {
            let out = s(|o| write_json_value(o, Value::F64(f)));
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }

    /// Whole records through `write_json_as` and `write_text`, the
    /// formatter's unchecked writer over every part of a record: escapes,
    /// non-ASCII, every field kind, ids, a service, a cut message. Only under
    /// Miri, which has no mapping to make a ring with: the records are
    /// decoded from a buffer (`logbus_ring::fuzzing`); without Miri the same
    /// paths run on mapped rings (tests/schema.rs) and in the fuzz target
    /// `record_decode`.
    #[cfg(miri)]
    #[test]
    fn whole_records_format_within_their_bound() {
        use logbus_ring::fuzzing::{decode_block, encode_block};
        use logbus_ring::{Batch, Event, Field};
        let text = "quote \" slash \\ nl \n tab \t ctl \u{1} é € 😀 \u{7f}";
        let fields = [
            Field {
                key: "s",
                value: Value::Str(text),
            },
            Field {
                key: text,
                value: Value::I64(i64::MIN),
            },
            Field {
                key: "u",
                value: Value::U64(u64::MAX),
            },
            Field {
                key: "f",
                value: Value::F64(-1.5e-300),
            },
            Field {
                key: "nan",
                value: Value::F64(f64::NAN),
            },
            Field {
                key: "b",
                value: Value::Bool(false),
            },
        ];
        let long = text.repeat(8);
        let events = [
            Event {
                target: text,
                fields: &fields,
                trace_id: Some([0xab; 16]),
                span_id: Some([0xcd; 8]),
                trace_flags: 1,
                time_ns: 1_700_000_000_123_456_789,
                ..Event::new(17, text)
            },
            Event::new(1, ""),
            Event::new(9, &long),
        ];
        let (block, n) = encode_block(&events, 1, 4096, 200);
        assert_eq!(n, 3);
        let mut batch = Batch::new();
        assert_eq!(decode_block(&block, 1, &mut batch).records, 3);
        for r in batch.iter() {
            for service in [None, Some(text)] {
                let mut out = b"kept".to_vec();
                write_json_as(&mut out, &r, service, Some(1000));
                let line = std::str::from_utf8(&out[4..]).unwrap();
                assert_eq!(line.matches('\n').count(), 1, "{line}");
                serde_json::from_str::<serde_json::Value>(line).unwrap();
                let mut out = Vec::new();
                write_text(&mut out, &r, service);
                assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            }
        }
    }
}
