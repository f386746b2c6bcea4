//! Entry points for the fuzz targets (`fuzz/`, feature `fuzzing`): the
//! parsers that read text a traced program hands the producer. Not a stable
//! interface.

/// The layer's W3C `traceparent` parser (a span field named `traceparent`):
/// `(trace id, span id, trace flags)` when it accepts `s`.
pub fn parse_traceparent(s: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let t = crate::fields::parse_traceparent(s)?;
    Some((t.trace_id?, t.span_id?, t.flags))
}
