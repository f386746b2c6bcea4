//! W3C traceparent parsing: the one parser every front end uses
//! (`logbus_ring::TraceParent::parse`: `logbus emit --traceparent`, and a
//! span field named `traceparent` in the `logbus` crate's layer). It may not
//! panic; what it accepts prints back (version 00) to a value it reads the
//! same way, and that value is the input's first 55 characters but for the
//! version when the input was a version-00 value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbus_ring::TraceParent;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Some(t) = TraceParent::parse(s) else {
        return;
    };
    let printed = t.to_string();
    assert_eq!(TraceParent::parse(&printed), Some(t), "{s:?}");
    let trimmed = s.trim_matches([' ', '\t']);
    if trimmed.starts_with("00-") {
        assert_eq!(printed, trimmed, "{s:?}");
    } else {
        assert_eq!(printed[2..], trimmed[2..55], "{s:?}");
    }
    assert!(t.trace_id != [0; 16] && t.span_id != [0; 8], "{s:?}");
});
