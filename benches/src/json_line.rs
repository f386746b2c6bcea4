//! The benchmark record as the collector's JSON line, written without a ring.
//!
//! The compare harness's in-process competitors (a mutex-guarded
//! `BufWriter`, tracing-appender, plain writes) write the very bytes the
//! collector's JSON sink writes for the benchmark record, built from
//! `logbus_format`'s public pieces (`logbus_format::write_json` takes a
//! record read from a ring, which they do not have). A test checks the bytes
//! against `write_json` of the same record read back from a ring.

use crate::{MESSAGE, SPAN_ID, TARGET, TRACE_ID};

/// Appends the benchmark record (INFO, [`TARGET`], [`MESSAGE`], [`TRACE_ID`],
/// [`SPAN_ID`]) as `logbus_format::write_json` writes it, with this time,
/// pid, tid, sequence number and service.
pub fn write_record_json(
    out: &mut Vec<u8>,
    time_ns: u64,
    pid: u32,
    tid: u32,
    seq: u64,
    service: &str,
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"time\":\"");
    logbus_format::write_rfc3339(out, time_ns);
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"severity\":9,\"target\":");
    logbus_format::write_json_str(out, TARGET);
    out.extend_from_slice(b",\"msg\":");
    logbus_format::write_json_str(out, MESSAGE);
    out.extend_from_slice(b",\"pid\":");
    out.extend_from_slice(num.format(pid).as_bytes());
    out.extend_from_slice(b",\"tid\":");
    out.extend_from_slice(num.format(tid).as_bytes());
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(num.format(seq).as_bytes());
    out.extend_from_slice(b",\"trace_id\":\"");
    logbus_format::write_hex(out, &TRACE_ID);
    out.extend_from_slice(b"\",\"span_id\":\"");
    logbus_format::write_hex(out, &SPAN_ID);
    out.extend_from_slice(b"\",\"service\":");
    logbus_format::write_json_str(out, service);
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TempPath, EVENT};
    use logbus_ring::{Batch, Consumer, Event, Ring, RingOptions};

    #[test]
    fn same_bytes_as_the_collectors_json_line() {
        let path = TempPath::new("-json-line");
        let ring = Ring::create(path.path(), &RingOptions::default()).unwrap();
        let mut w = ring.writer().unwrap();
        for _ in 0..3 {
            let ev = Event {
                time_ns: 1_764_000_000_123_456_789,
                ..EVENT
            };
            w.emit(&ev).unwrap();
        }
        let mut consumer = Consumer::acquire(&ring).unwrap();
        let mut batch = Batch::new();
        assert_eq!(consumer.poll(&mut batch, 10), 3);
        for r in batch.iter() {
            let mut expected = Vec::new();
            logbus_format::write_json(&mut expected, &r, Some("bench-service"));
            let mut line = Vec::new();
            write_record_json(
                &mut line,
                r.time_ns(),
                r.pid(),
                r.tid(),
                r.seq(),
                "bench-service",
            );
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
