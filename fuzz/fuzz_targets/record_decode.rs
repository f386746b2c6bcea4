//! The record decoder over arbitrary block bytes: the first 4 bytes choose
//! the block's sequence number, the rest is the block, read as the consumer
//! reads a mapped one (`logbus_ring::fuzzing::decode_block`). Every record
//! that validates is read through every accessor and formatted as a JSON line
//! and a text line by `logbus-format`, as the collector and `logbus dump` do:
//! no panic, no out-of-bounds access, every JSON line one parseable object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbus_ring::fuzzing::decode_block;
use logbus_ring::Batch;

fuzz_target!(|data: &[u8]| {
    let Some((seq, block)) = data.split_first_chunk::<4>() else {
        return;
    };
    let seq = u32::from_le_bytes(*seq) as u64;
    let mut batch = Batch::new();
    let got = decode_block(block, seq, &mut batch);
    assert!(got.reached as usize <= block.len().next_multiple_of(8));
    assert_eq!(got.records, batch.len());
    let mut line = Vec::new();
    for r in batch.iter() {
        let _ = (r.level(), r.time_ns(), r.pid(), r.tid(), r.trace_id(), r.span_id());
        let _ = (r.trace_flags(), r.truncated(), r.resource(), r.pos());
        assert!(r.target().len() + r.message().len() <= r.payload_len());
        assert_eq!(r.fields().count(), r.field_count());
        line.clear();
        logbus_format::write_json_as(&mut line, &r, Some("svc \"x\"\n"), Some(1000));
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let v: serde_json::Value = serde_json::from_slice(&line).expect("a JSON line");
        assert!(v.is_object());
        line.clear();
        logbus_format::write_text(&mut line, &r, Some("svc"));
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    }
});
