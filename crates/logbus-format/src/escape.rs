//! Escaping: which bytes a JSON string or a text-form value must escape or
//! quote, checked 8 bytes at a time, and the writers of escaped strings.

use crate::out::Out;

/// Whether any of the 8 bytes of `x` needs escaping in JSON: below 0x20,
/// `"` (0x22), `\` (0x5c) or DEL (0x7f). Bytes >= 0x80 (UTF-8) do not.
#[inline(always)]
pub(crate) fn word_needs_escape(x: u64) -> bool {
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
pub(crate) fn word_has_control(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    let del = (x ^ (LO * 0x7f)).wrapping_sub(LO) & !(x ^ (LO * 0x7f)) & HI;
    (below_space | del) != 0
}

/// Whether any byte of `x` makes a text-form field value need quotes: a space
/// or below, `"` or `=`.
#[inline(always)]
pub(crate) fn word_needs_quotes(x: u64) -> bool {
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
pub(crate) fn any_word(b: &[u8], hit: impl Fn(u64) -> bool) -> bool {
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
pub(crate) fn str_needs_escape(b: &[u8]) -> bool {
    any_word(b, word_needs_escape)
}

#[inline]
pub(crate) fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// Appends `s`, known to need no escaping, between quotes.
#[inline(always)]
pub(crate) fn put_quoted(w: &mut Out, s: &str) {
    w.byte(b'"');
    w.put(s.as_bytes());
    w.byte(b'"');
}

/// Appends `s` as a JSON string literal. Always inlined: `Out` then stays in
/// registers instead of going through memory around every call.
#[inline(always)]
pub(crate) fn put_json_str(w: &mut Out, s: &str) {
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
pub(crate) fn put_escaped(w: &mut Out, bytes: &[u8], _quoted: bool) {
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

/// Control characters (a newline in a message, say) would break the one-line
/// form: write them escaped as in JSON, without the quotes.
#[inline(always)]
pub(crate) fn put_text_clean(w: &mut Out, s: &str) {
    if any_word(s.as_bytes(), word_has_control) {
        put_escaped(w, s.as_bytes(), false);
    } else {
        w.put(s.as_bytes());
    }
}
