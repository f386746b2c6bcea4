//! W3C traceparent parsing, both parsers that exist: the CLI's strict one
//! (`bins/logbus/src/cli.rs`, `logbus emit --traceparent`, compiled in from
//! its source) and the producer's lenient one (`logbus` crate, a span field
//! named `traceparent`). Neither may panic, and whatever the CLI accepts the
//! producer must read the same way (the producer also accepts other versions
//! and leading or trailing blanks, which the CLI refuses: see
//! docs/FUZZING.md).
#![no_main]

#[allow(dead_code)]
#[path = "../../bins/logbus/src/cli.rs"]
mod cli;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let strict = cli::parse_traceparent(s);
    let lenient = logbus::fuzzing::parse_traceparent(s);
    if let Ok(t) = strict {
        assert_eq!(lenient, Some((t.trace_id, t.span_id, t.flags)), "{s:?}");
    }
});
