//! Reading records: copying them out of shared memory and validating them.
//!
//! Shared memory is untrusted: any process with write access may have put
//! anything there. Bytes are copied out with atomic loads (so a concurrent
//! writer can make a copy wrong but never make the read undefined), then every
//! length, index, level and string is checked before a [`RecordRef`] exists.
//! Accessors on a `RecordRef` therefore cannot fail.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::Value;
use crate::layout::{flags, kind, RecordHeader, RECORD_HEADER};
use crate::level::Level;

/// Copies `len` bytes from shared memory at `src` (8-aligned) onto the end of
/// `buf`, with relaxed atomic 8-byte loads. Reads up to 7 bytes past `len`.
/// Returns the OR of every word read (those bytes past `len` included): if
/// no byte of it has its high bit set, the copy is all ASCII (see
/// [`validate_copied`]).
///
/// # Safety
/// `src .. src + len.next_multiple_of(8)` lies inside a live mapping and `src`
/// is 8-aligned.
pub(crate) unsafe fn copy_shared(src: *const u8, len: usize, buf: &mut Vec<u8>) -> u64 {
    let words = len.div_ceil(8);
    buf.reserve(words * 8);
    let start = buf.len();
    let dst = buf.as_mut_ptr().add(start);
    let mut or = 0;
    for i in 0..words {
        // SAFETY: in bounds and aligned by the caller's contract; atomic loads
        // make a racing writer harmless to us (we validate what we got).
        // Relaxed: the caller orders the copy (Acquire load of the tail before,
        // a CAS or an Acquire fence and re-check after).
        let w = unsafe { (*(src as *const AtomicU64).add(i)).load(Ordering::Relaxed) };
        or |= w;
        // SAFETY: `reserve` made room for `words * 8` bytes after `start`.
        unsafe { (dst.add(i * 8) as *mut u64).write_unaligned(w) };
    }
    // SAFETY: the first `len <= words * 8` bytes after `start` were written.
    unsafe { buf.set_len(start + len) };
    or
}

/// Reads a record header from shared memory at `src` with relaxed atomic
/// 8-byte loads, straight into the value (no intermediate buffer).
///
/// # Safety
/// `src .. src + RECORD_HEADER` lies inside a live mapping and `src` is 8-aligned.
#[inline]
pub(crate) unsafe fn read_header(src: *const u8) -> RecordHeader {
    const WORDS: usize = RECORD_HEADER / 8;
    let words: [u64; WORDS] = std::array::from_fn(|i| {
        // SAFETY: in bounds and aligned by the caller's contract; atomic loads
        // make a racing writer harmless to us (the header is validated).
        // Relaxed: ordered by the caller, as in `copy_shared`.
        unsafe { (*(src as *const AtomicU64).add(i)).load(Ordering::Relaxed) }
    });
    bytemuck::cast(words)
}

/// UTF-8 validation with a fast path for ASCII, which nearly every target,
/// key and message is (`is_ascii` checks a word at a time).
#[inline]
fn utf8_ok(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

/// [`validate`] for a body just copied by [`copy_shared`], given the OR of
/// the words it read: when none of them has a byte with the high bit set,
/// every byte of the body is ASCII, so every string in it is UTF-8, and only
/// the lengths, kinds and values are left to check (one walk, no look at the
/// string bytes). Otherwise (non-ASCII text, or a number, or the padding
/// after the body, with a high bit set) the full [`validate`].
#[inline]
pub(crate) fn validate_copied(hdr: &RecordHeader, body: &[u8], words_or: u64) -> bool {
    if words_or & HIGH_BITS != 0 {
        return validate(hdr, body);
    }
    if Level::from_severity(hdr.severity).is_none() {
        return false;
    }
    let t = hdr.target_len as usize;
    let m = hdr.msg_len as usize;
    match t.checked_add(m) {
        Some(tm) if tm <= body.len() => walk_fields::<false>(&body[tm..], hdr.nfields).is_some(),
        _ => false,
    }
}

/// Checks a record's variable part against its header; `true` if every length,
/// kind and string is valid.
pub(crate) fn validate(hdr: &RecordHeader, body: &[u8]) -> bool {
    if Level::from_severity(hdr.severity).is_none() {
        return false;
    }
    let t = hdr.target_len as usize;
    let m = hdr.msg_len as usize;
    if t.checked_add(m).is_none_or(|tm| tm > body.len()) {
        return false;
    }
    // Fast path: walk the fields once, OR-ing every string byte together; if
    // no string byte has its high bit set, every string is ASCII, hence UTF-8.
    // Otherwise check each string as UTF-8 on its own (the slow path).
    match walk_fields::<true>(&body[t + m..], hdr.nfields) {
        None => false,
        Some(high) if (high | or_bytes(&body[..t + m])) & HIGH_BITS == 0 => true,
        Some(_) => {
            utf8_ok(&body[..t])
                && utf8_ok(&body[t..t + m])
                && fields_utf8(&body[t + m..], hdr.nfields)
        }
    }
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The OR of `b`'s bytes, spread over a word (only its high bits mean
/// anything). No byte loop: the last word overlaps the one before, a string
/// of 4 to 7 bytes is its first and last 4, one of 1 to 3 its first, middle
/// and last byte (keys and short values are mostly that short).
#[inline(always)]
fn or_bytes(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let mut acc = word(&b[n - 8..]);
        for c in b.chunks_exact(8) {
            acc |= word(c);
        }
        acc
    } else if n >= 4 {
        let half = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        (half(0) | half(n - 4)) as u64
    } else if n > 0 {
        (b[0] | b[n / 2] | b[n - 1]) as u64
    } else {
        0
    }
}

/// Walks `n` fields: `Some(OR of their key and string bytes)` (with `OR`;
/// else `Some(0)`) when every length and kind is valid and nothing is left over.
#[inline]
fn walk_fields<const OR: bool>(mut b: &[u8], n: u16) -> Option<u64> {
    let mut acc = 0u64;
    for _ in 0..n {
        let (klen, k) = (*b.first()? as usize, *b.get(1)?);
        let key = b.get(2..2 + klen)?;
        if OR {
            acc |= or_bytes(key);
        }
        b = &b[2 + klen..];
        let len = match k {
            kind::STR => {
                let n = u16::from_le_bytes([*b.first()?, *b.get(1)?]) as usize;
                let s = b.get(2..2 + n)?;
                if OR {
                    acc |= or_bytes(s);
                }
                2 + n
            }
            kind::I64 | kind::U64 | kind::F64 => 8,
            kind::BOOL if *b.first()? <= 1 => 1,
            _ => return None,
        };
        b = b.get(len..)?;
    }
    b.is_empty().then_some(acc)
}

/// Whether every key and string of `n` well-formed fields is UTF-8.
#[cold]
fn fields_utf8(rest: &[u8], n: u16) -> bool {
    let mut it = FieldIter { rest, left: n };
    (0..n).all(|_| match it.parse() {
        Some((key, RawValue::Str(s))) => utf8_ok(key) && utf8_ok(s),
        Some((key, _)) => utf8_ok(key),
        None => false,
    })
}

/// Where a record lies in the ring: its block's sequence number and the
/// offset just past it. Unique, and what a consumer sink's progress is kept in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockPos {
    /// The block's sequence number.
    pub seq: u64,
    /// Offset just past the record in its block.
    pub end: u32,
}

/// A validated record borrowed from a [`crate::Batch`].
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub(crate) hdr: &'a RecordHeader,
    pub(crate) body: &'a [u8],
    pub(crate) serial: u64,
    pub(crate) pos: BlockPos,
}

impl<'a> RecordRef<'a> {
    /// OpenTelemetry severity number, 1-24.
    #[inline]
    pub fn severity(&self) -> u8 {
        self.hdr.severity
    }
    /// The severity's level band.
    #[inline]
    pub fn level(&self) -> Level {
        // Validated in `validate`.
        Level::from_severity(self.hdr.severity).unwrap_or(Level::Info)
    }
    /// Event time, ns since the Unix epoch.
    #[inline]
    pub fn time_ns(&self) -> u64 {
        self.hdr.time_ns
    }
    /// Producer process id.
    #[inline]
    pub fn pid(&self) -> u32 {
        self.hdr.pid
    }
    /// Producer thread id.
    #[inline]
    pub fn tid(&self) -> u32 {
        self.hdr.tid
    }
    /// The consumer's serial number of this record: unique for the ring's
    /// consumer, increasing in the order it delivers records (each producer
    /// thread's records in emit order). Peekers number their own reads.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.serial
    }
    /// Where the record lies in the ring (see [`BlockPos`]).
    #[inline]
    pub fn pos(&self) -> BlockPos {
        self.pos
    }
    /// What to commit once done with this record and every one before it:
    /// [`crate::Consumer::commit`] takes it.
    #[inline]
    pub fn end(&self) -> u64 {
        self.serial + 1
    }
    /// The trace id, when the record has one.
    #[inline]
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        (self.hdr.flags & flags::HAS_TRACE != 0).then_some(self.hdr.trace_id)
    }
    /// The span id, when the record has one.
    #[inline]
    pub fn span_id(&self) -> Option<[u8; 8]> {
        (self.hdr.flags & flags::HAS_SPAN != 0).then_some(self.hdr.span_id)
    }
    /// W3C trace flags.
    #[inline]
    pub fn trace_flags(&self) -> u8 {
        self.hdr.trace_flags
    }
    /// Whether something was cut to fit.
    #[inline]
    pub fn truncated(&self) -> bool {
        self.hdr.flags & flags::TRUNCATED != 0
    }
    /// Resource table index + 1, or 0.
    #[inline]
    pub fn resource(&self) -> u8 {
        self.hdr.resource
    }
    /// The target (logger name).
    #[inline]
    pub fn target(&self) -> &'a str {
        let t = self.hdr.target_len as usize;
        // SAFETY: `validate` checked these bytes are UTF-8 and in bounds.
        unsafe { std::str::from_utf8_unchecked(&self.body[..t]) }
    }
    /// The message.
    #[inline]
    pub fn message(&self) -> &'a str {
        let t = self.hdr.target_len as usize;
        let m = self.hdr.msg_len as usize;
        // SAFETY: as in `target`.
        unsafe { std::str::from_utf8_unchecked(&self.body[t..t + m]) }
    }
    /// Bytes of the record's variable part (target, message and fields): an
    /// upper bound for sizing output buffers.
    #[inline]
    pub fn payload_len(&self) -> usize {
        self.body.len()
    }
    /// Number of fields.
    #[inline]
    pub fn field_count(&self) -> usize {
        self.hdr.nfields as usize
    }
    /// The structured fields, in the order they were written.
    #[inline]
    pub fn fields(&self) -> FieldIter<'a> {
        let t = self.hdr.target_len as usize + self.hdr.msg_len as usize;
        FieldIter {
            rest: &self.body[t..],
            left: self.hdr.nfields,
        }
    }
}

enum RawValue<'a> {
    Str(&'a [u8]),
    Other(Value<'static>),
}

/// Iterator over a validated record's fields.
#[derive(Clone, Debug)]
pub struct FieldIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> FieldIter<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Some(a)
    }

    #[inline]
    fn parse(&mut self) -> Option<(&'a [u8], RawValue<'a>)> {
        let kl = self.take(2)?;
        let (klen, k) = (kl[0] as usize, kl[1]);
        let key = self.take(klen)?;
        let eight = |it: &mut Self| -> Option<[u8; 8]> {
            it.take(8).map(|b| b.try_into().unwrap_or([0; 8]))
        };
        let v = match k {
            kind::STR => {
                let l = self.take(2)?;
                let n = u16::from_le_bytes([l[0], l[1]]) as usize;
                RawValue::Str(self.take(n)?)
            }
            kind::I64 => RawValue::Other(Value::I64(i64::from_le_bytes(eight(self)?))),
            kind::U64 => RawValue::Other(Value::U64(u64::from_le_bytes(eight(self)?))),
            kind::F64 => RawValue::Other(Value::F64(f64::from_le_bytes(eight(self)?))),
            kind::BOOL => match self.take(1)?[0] {
                0 => RawValue::Other(Value::Bool(false)),
                1 => RawValue::Other(Value::Bool(true)),
                _ => return None,
            },
            _ => return None,
        };
        Some((key, v))
    }
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a str, Value<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (key, v) = self.parse()?;
        // SAFETY: the record was validated: keys and string values are UTF-8.
        let key = unsafe { std::str::from_utf8_unchecked(key) };
        Some(match v {
            RawValue::Str(s) => (key, Value::Str(unsafe { std::str::from_utf8_unchecked(s) })),
            RawValue::Other(v) => (key, v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field as the producer lays it out: key length, kind, key, value.
    fn field(key: &[u8], kind: u8, value: &[u8]) -> Vec<u8> {
        let mut f = vec![key.len() as u8, kind];
        f.extend_from_slice(key);
        if kind == kind::STR {
            f.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        f.extend_from_slice(value);
        f
    }

    fn check(target: &[u8], msg: &[u8], fields: &[Vec<u8>]) -> bool {
        let mut body = [target, msg].concat();
        for f in fields {
            body.extend_from_slice(f);
        }
        let hdr = RecordHeader {
            severity: 9,
            target_len: target.len() as u16,
            msg_len: msg.len() as u32,
            nfields: fields.len() as u16,
            ..RecordHeader::default()
        };
        let full = validate(&hdr, &body);
        // The copy-and-validate path gives the same answer, whatever the
        // padding after the body (which the copy reads too).
        for pad in [0u8, b'a', 0x80, 0xff] {
            let mut words = vec![0u64; body.len().div_ceil(8) + 1];
            // SAFETY: `words` is 8-aligned and longer than the body's
            // words; it stays alive for the copy.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8)
            };
            bytes.fill(pad);
            bytes[..body.len()].copy_from_slice(&body);
            let mut copy = Vec::new();
            // SAFETY: as above: in bounds (padded to whole words) and aligned.
            let or = unsafe { copy_shared(words.as_ptr() as *const u8, body.len(), &mut copy) };
            assert_eq!(copy, body);
            assert_eq!(validate_copied(&hdr, &copy, or), full, "{body:?} pad {pad}");
        }
        full
    }

    #[test]
    fn strings_must_be_utf8_wherever_they_are() {
        let num = field(b"n", kind::U64, &7u64.to_le_bytes());
        let ok = field(b"path", kind::STR, b"/api/v1/orders");
        assert!(check(
            b"app::http",
            b"request handled",
            &[num.clone(), ok.clone()]
        ));
        // Valid UTF-8 beyond ASCII, short and long, everywhere: accepted.
        let e = "é".as_bytes();
        let long = "€uro prices, bien sûr".as_bytes();
        assert!(check(
            e,
            long,
            &[field(e, kind::STR, long), field(long, kind::BOOL, &[1])]
        ));
        // A lone continuation byte or a cut sequence: rejected in each place.
        for bad in [
            &b"\x80"[..],
            b"ok\xc3",
            b"\xff\xfe long enough to be word-scanned",
        ] {
            assert!(
                !check(bad, b"m", std::slice::from_ref(&num)),
                "{bad:?} in target"
            );
            assert!(
                !check(b"t", bad, std::slice::from_ref(&num)),
                "{bad:?} in message"
            );
            assert!(
                !check(b"t", b"m", &[field(bad, kind::U64, &[0; 8])]),
                "{bad:?} in key"
            );
            assert!(
                !check(b"t", b"m", &[field(b"k", kind::STR, bad)]),
                "{bad:?} in value"
            );
        }
        // A character split between target and message: each must be UTF-8 alone.
        assert!(!check(&e[..1], &e[1..], &[]));
    }

    #[test]
    fn field_structure_is_checked() {
        let num = field(b"n", kind::U64, &7u64.to_le_bytes());
        assert!(
            !check(b"t", b"m", &[field(b"k", 9, &[0; 8])]),
            "unknown kind"
        );
        assert!(
            !check(b"t", b"m", &[field(b"k", kind::BOOL, &[2])]),
            "bool 2"
        );
        assert!(
            !check(b"t", b"m", &[field(b"k", kind::F64, &[0; 7])]),
            "short value"
        );
        let mut long = field(b"k", kind::STR, b"abc");
        long.truncate(long.len() - 1);
        assert!(!check(b"t", b"m", &[long]), "string past the end");
        let mut extra = num.clone();
        extra.push(0);
        assert!(!check(b"t", b"m", &[extra]), "bytes left over");
        assert!(check(
            b"t",
            b"m",
            &[num.clone(), field(b"b", kind::BOOL, &[0])]
        ));
    }
}
