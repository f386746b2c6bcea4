//! Collecting an event's fields without allocating.
//!
//! Visitors hand us values whose borrows end with each call, so strings are
//! copied into an arena (`String`) that lives in a thread-local and is cleared,
//! never freed, between events; fields refer to the arena by range. Once the
//! event is collected, [`FieldBuf::fields`] lays the fields out as
//! [`logbus_ring::Field`]s in a fixed array on the stack.
//!
//! At most [`MAX_FIELDS`] fields are kept per record (the event's own first, then
//! those of its spans, innermost span first); later ones are cut. A string value
//! (including a formatted `Debug` value) is cut at [`MAX_VALUE`] bytes.

use std::fmt::{self, Write};

use logbus_ring::{Field, Value};

/// The most fields one record carries.
pub const MAX_FIELDS: usize = 16;
/// Longest string value (or message) kept, in bytes; longer ones are cut.
pub const MAX_VALUE: usize = 16 * 1024;

/// A field key: a `tracing` field name, or bytes in the arena.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key {
    Static(&'static str),
    Arena(u32, u32),
}

/// A field value; strings live in the arena.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val {
    Str(u32, u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// Fields whose strings live in one arena.
#[derive(Debug, Default)]
pub(crate) struct FieldBuf {
    arena: String,
    items: Vec<(Key, Val)>,
}

impl FieldBuf {
    pub(crate) fn with_capacity(arena: usize) -> FieldBuf {
        FieldBuf {
            arena: String::with_capacity(arena),
            items: Vec::with_capacity(MAX_FIELDS),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= MAX_FIELDS
    }

    fn range(&self, (a, b): (u32, u32)) -> &str {
        &self.arena[a as usize..b as usize]
    }

    pub(crate) fn key(&self, k: Key) -> &str {
        match k {
            Key::Static(s) => s,
            Key::Arena(a, b) => self.range((a, b)),
        }
    }

    fn value(&self, v: Val) -> Value<'_> {
        match v {
            Val::Str(a, b) => Value::Str(self.range((a, b))),
            Val::I64(v) => Value::I64(v),
            Val::U64(v) => Value::U64(v),
            Val::F64(v) => Value::F64(v),
            Val::Bool(v) => Value::Bool(v),
        }
    }

    /// Whether a field named `key` is present.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.items.iter().any(|&(k, _)| self.key(k) == key)
    }

    /// Appends `s` (cut to [`MAX_VALUE`]) to the arena and returns its range.
    pub(crate) fn store_str(&mut self, s: &str) -> (u32, u32) {
        let start = self.arena.len();
        bounded(&mut self.arena, MAX_VALUE).push(s);
        (start as u32, self.arena.len() as u32)
    }

    /// Formats `args` into the arena (cut to [`MAX_VALUE`]) and returns its range.
    pub(crate) fn store_fmt(&mut self, args: fmt::Arguments<'_>) -> (u32, u32) {
        let start = self.arena.len();
        let _ = bounded(&mut self.arena, MAX_VALUE).write_fmt(args);
        (start as u32, self.arena.len() as u32)
    }

    /// Adds a field unless the buffer is full. A key that is already present is
    /// replaced (the last value recorded wins, as with `Span::record`).
    pub(crate) fn push(&mut self, key: Key, val: Val) {
        let name = self.key(key);
        if let Some(i) = self.items.iter().position(|&(k, _)| self.key(k) == name) {
            self.items[i].1 = val;
        } else if !self.is_full() {
            self.items.push((key, val));
        }
    }

    /// Adds a field known not to be present yet (the fields of one `tracing`
    /// event have distinct names), unless the buffer is full.
    #[inline]
    pub(crate) fn push_new(&mut self, key: Key, val: Val) {
        if !self.is_full() {
            self.items.push((key, val));
        }
    }

    /// [`FieldBuf::push_new`] for a string value, copied into the arena.
    #[inline]
    pub(crate) fn push_new_str(&mut self, key: Key, s: &str) {
        if !self.is_full() {
            let r = self.store_str(s);
            self.items.push((key, Val::Str(r.0, r.1)));
        }
    }

    /// [`FieldBuf::push_new`] for a formatted value, written into the arena.
    #[inline]
    pub(crate) fn push_new_fmt(&mut self, key: Key, args: fmt::Arguments<'_>) {
        if !self.is_full() {
            let r = self.store_fmt(args);
            self.items.push((key, Val::Str(r.0, r.1)));
        }
    }

    pub(crate) fn push_str(&mut self, key: Key, s: &str) {
        if self.is_full() {
            return;
        }
        let r = self.store_str(s);
        self.push(key, Val::Str(r.0, r.1));
    }

    pub(crate) fn push_fmt(&mut self, key: Key, args: fmt::Arguments<'_>) {
        if self.is_full() {
            return;
        }
        let r = self.store_fmt(args);
        self.push(key, Val::Str(r.0, r.1));
    }

    /// Copies the fields of `other` whose keys are not present yet, while there is room.
    pub(crate) fn merge_from(&mut self, other: &FieldBuf) {
        for &(k, v) in &other.items {
            if self.is_full() {
                return;
            }
            let name = other.key(k);
            if self.contains(name) {
                continue;
            }
            let key = match k {
                Key::Static(s) => Key::Static(s),
                Key::Arena(..) => {
                    let r = self.store_str(name);
                    Key::Arena(r.0, r.1)
                }
            };
            let val = match v {
                Val::Str(a, b) => {
                    let r = self.store_str(other.range((a, b)));
                    Val::Str(r.0, r.1)
                }
                v => v,
            };
            self.items.push((key, val));
        }
    }

    /// Lays the fields out for the ring; returns how many of `out` are used.
    pub(crate) fn fields<'a>(&'a self, out: &mut [Field<'a>; MAX_FIELDS]) -> usize {
        for (f, &(k, v)) in out.iter_mut().zip(&self.items) {
            *f = Field {
                key: self.key(k),
                value: self.value(v),
            };
        }
        self.items.len().min(MAX_FIELDS)
    }
}

/// An empty field array to fill with [`FieldBuf::fields`].
pub(crate) const EMPTY_FIELDS: [Field<'static>; MAX_FIELDS] = [Field {
    key: "",
    value: Value::Bool(false),
}; MAX_FIELDS];

/// A `fmt::Write` into a `String` that silently stops at `max` bytes (on a
/// char boundary), so that a huge `Debug` value can neither grow the buffers
/// without bound nor fail the formatting.
pub(crate) struct Bounded<'a> {
    s: &'a mut String,
    limit: usize,
}

/// A writer that lets `s` grow by at most `max` bytes.
pub(crate) fn bounded(s: &mut String, max: usize) -> Bounded<'_> {
    let limit = s.len() + max;
    Bounded { s, limit }
}

impl Bounded<'_> {
    pub(crate) fn push(&mut self, x: &str) {
        let room = self.limit.saturating_sub(self.s.len());
        let mut cut = x.len().min(room);
        while !x.is_char_boundary(cut) {
            cut -= 1;
        }
        self.s.push_str(&x[..cut]);
    }
}

impl Write for Bounded<'_> {
    fn write_str(&mut self, x: &str) -> fmt::Result {
        self.push(x);
        Ok(())
    }
}

/// W3C trace context found for a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TraceCtx {
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub flags: u8,
}

impl TraceCtx {
    pub(crate) fn is_some(&self) -> bool {
        self.trace_id.is_some()
    }
}

/// Parses exactly `2 * N` hex digits; an all-zero id is no id (W3C).
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(s[2 * i])? << 4 | digit(s[2 * i + 1])?;
    }
    (out != [0u8; N]).then_some(out)
}

/// A `traceparent` span field, by the one W3C rule
/// ([`logbus_ring::TraceParent::parse`]).
pub(crate) fn parse_traceparent(s: &str) -> Option<TraceCtx> {
    let t = logbus_ring::TraceParent::parse(s)?;
    Some(TraceCtx {
        trace_id: Some(t.trace_id),
        span_id: Some(t.span_id),
        flags: t.flags,
    })
}

/// A string formatted into a stack buffer (for reading ids out of `Debug`
/// values without allocating); longer output is marked as overflowed.
pub(crate) struct StackStr {
    buf: [u8; 64],
    len: usize,
    overflow: bool,
}

impl StackStr {
    pub(crate) fn format(args: fmt::Arguments<'_>) -> StackStr {
        let mut s = StackStr {
            buf: [0; 64],
            len: 0,
            overflow: false,
        };
        let _ = s.write_fmt(args);
        s
    }

    /// The text with surrounding quotes removed (`?value` of a string quotes it).
    pub(crate) fn as_str(&self) -> Option<&str> {
        if self.overflow {
            return None;
        }
        let s = std::str::from_utf8(&self.buf[..self.len]).ok()?;
        Some(s.trim_matches('"'))
    }
}

impl Write for StackStr {
    fn write_str(&mut self, x: &str) -> fmt::Result {
        let end = self.len + x.len();
        if end > self.buf.len() {
            self.overflow = true;
            return Ok(());
        }
        self.buf[self.len..end].copy_from_slice(x.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_and_traceparent() {
        assert_eq!(parse_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(parse_hex::<2>("0000"), None);
        assert_eq!(parse_hex::<2>("0a"), None);
        assert_eq!(parse_hex::<2>("0g00"), None);
        let t =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.trace_id.unwrap()[0], 0x4b);
        assert_eq!(t.span_id.unwrap()[7], 0xb7);
        assert_eq!(t.flags, 1);
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(parse_traceparent("garbage").is_none());
    }

    #[test]
    fn buffer_replaces_merges_and_caps() {
        let mut a = FieldBuf::with_capacity(64);
        a.push(Key::Static("n"), Val::I64(1));
        a.push(Key::Static("n"), Val::I64(2));
        a.push_str(Key::Static("s"), "x");
        let mut b = FieldBuf::with_capacity(64);
        b.push_str(Key::Static("s"), "shadowed");
        b.push_fmt(Key::Static("d"), format_args!("{:?}", [1, 2]));
        a.merge_from(&b);
        let mut out = EMPTY_FIELDS;
        let n = a.fields(&mut out);
        assert_eq!(n, 3);
        assert_eq!(out[0].value, Value::I64(2));
        assert_eq!(out[1].value, Value::Str("x"));
        assert_eq!((out[2].key, out[2].value), ("d", Value::Str("[1, 2]")));
        for i in 0..40 {
            a.push(
                Key::Static(["k0", "k1", "k2", "k3", "k4"][i % 5]),
                Val::U64(0),
            );
            let s = a.store_str(&format!("key{i}"));
            a.push(Key::Arena(s.0, s.1), Val::Bool(true));
        }
        assert_eq!(a.len(), MAX_FIELDS);
    }

    #[test]
    fn bounded_cuts_on_char_boundary() {
        let mut s = String::new();
        bounded(&mut s, 5).push("abcdé");
        assert_eq!(s, "abcd");
    }
}
