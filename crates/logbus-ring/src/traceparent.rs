//! The W3C Trace Context `traceparent` value, parsed by one rule for every
//! front end (`logbus emit --traceparent`, a span field named `traceparent`
//! in the `logbus` crate's layer).
//!
//! The rule is the W3C recommendation's: `VERSION-TRACEID-PARENTID-FLAGS`,
//! all lowercase hex, two, 32, 16 and two digits. Version `ff` is invalid;
//! version `00` has exactly these four fields, while a later version may
//! carry more after a `-` (ignored, as the recommendation asks of a reader
//! that knows version 00 only). An all-zero trace id or parent id is
//! invalid. Blanks (spaces, tabs) around the value are ignored, as HTTP
//! ignores them around a header value.
//!
//! ```
//! use logbus_ring::TraceParent;
//! let t = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! assert_eq!(t.trace_id[0], 0x4b);
//! assert_eq!(t.flags, 1);
//! assert!(TraceParent::parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
//! ```

/// A parsed `traceparent`: the ids and flags a record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (never all zero).
    pub span_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

/// The length of a version-00 value (and the least of any version).
const LEN: usize = 55;

/// `2 * N` lowercase hex digits as bytes.
fn lower_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (digit(s[2 * i])? << 4) | digit(s[2 * i + 1])?;
    }
    Some(out)
}

impl TraceParent {
    /// Parses `s` by the W3C rule (module documentation); `None` when it is
    /// not a valid `traceparent`.
    pub fn parse(s: &str) -> Option<TraceParent> {
        let s = s.trim_matches([' ', '\t']).as_bytes();
        if s.len() < LEN || s[2] != b'-' || s[35] != b'-' || s[52] != b'-' {
            return None;
        }
        let [version] = lower_hex::<1>(&s[..2])?;
        let more = s.len() > LEN;
        if version == 0xff || (version == 0 && more) || (more && s[LEN] != b'-') {
            return None;
        }
        let trace_id = lower_hex::<16>(&s[3..35]).filter(|t| *t != [0; 16])?;
        let span_id = lower_hex::<8>(&s[36..52]).filter(|t| *t != [0; 8])?;
        let [flags] = lower_hex::<1>(&s[53..55])?;
        Some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }
}

impl std::fmt::Display for TraceParent {
    /// The version-00 form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("00-")?;
        for b in self.trace_id {
            write!(f, "{b:02x}")?;
        }
        f.write_str("-")?;
        for b in self.span_id {
            write!(f, "{b:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_version_00_value_splits_into_ids_and_flags_and_prints_back() {
        let t = TraceParent::parse(OK).unwrap();
        assert_eq!(t.trace_id[..2], [0x4b, 0xf9]);
        assert_eq!(t.span_id[..2], [0x00, 0xf0]);
        assert_eq!(t.flags, 1);
        assert_eq!(t.to_string(), OK);
        assert_eq!(TraceParent::parse(&format!(" \t{OK} ")), Some(t));
    }

    #[test]
    fn later_versions_are_read_and_their_extra_fields_ignored() {
        let t = TraceParent::parse(OK).unwrap();
        let v = |s: String| TraceParent::parse(&s);
        assert_eq!(v(format!("01{}", &OK[2..])), Some(t));
        assert_eq!(v(format!("cc{}-what-comes-later", &OK[2..])), Some(t));
        // Version 00 has exactly four fields; a later one needs a '-' first.
        assert_eq!(v(format!("{OK}-later")), None);
        assert_eq!(v(format!("01{}x", &OK[2..])), None);
    }

    #[test]
    fn every_invalid_form_is_refused() {
        let bad = [
            "",
            "garbage",
            &OK[..54],
            // Version ff, and versions that are not two lowercase hex digits.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Uppercase hex, all-zero ids, bad flags, misplaced dashes.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7+01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            // Non-ASCII where a digit should be (a multi-byte character).
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ];
        for s in bad {
            assert_eq!(TraceParent::parse(s), None, "{s:?}");
        }
    }
}
