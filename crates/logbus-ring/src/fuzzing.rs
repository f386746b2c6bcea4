//! The record encoder and decoder on plain byte buffers, with no ring and no
//! mapping: the entry points of the fuzz targets (`fuzz/`, feature
//! `fuzzing`) and of the unit tests that Miri runs (`docs/FUZZING.md`).
//!
//! They call the very functions a [`crate::Writer`] and a
//! [`crate::Consumer`] use on a mapped block ([`crate::event`]'s
//! `Plan::write`, the consumer's `copy_records`), on a private, 8-aligned
//! copy of the bytes. Not a stable interface: compiled only for tests, under
//! Miri and with the `fuzzing` feature.

use crate::block::stamp;
use crate::event::{Event, Plan};
use crate::layout::{flags, placed, RecordHeader, MAX_BLOCK, MIN_BLOCK};
use crate::read::{copy_records, Batch};

/// What [`decode_block`] found in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Valid records appended to the batch.
    pub records: usize,
    /// Stamped records skipped because they did not validate.
    pub invalid: u64,
    /// Offset after the last record looked at.
    pub reached: u32,
    /// The walk stopped at an offset holding no stamped record.
    pub blocked: bool,
}

/// A block's bytes, 8-aligned, in whole words (the tail zero-filled).
fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
    words
}

/// Decodes the records of `block`, taken as block `seq` of a ring and read
/// from offset 0 to its end, into `batch`, as the consumer reads a mapped
/// block. `block` is cut to [`MAX_BLOCK`] bytes and rounded up to whole words
/// with zeros.
pub fn decode_block(block: &[u8], seq: u64, batch: &mut Batch) -> Decoded {
    let block = &block[..block.len().min(MAX_BLOCK as usize)];
    let words = aligned(block);
    let size = (words.len() * 8) as u32;
    let before = batch.len();
    let mut serial = 0;
    // SAFETY: `words` is 8-aligned, `size` bytes long and alive for the call;
    // nobody else writes it.
    let got = unsafe {
        copy_records(
            words.as_ptr() as *const u8,
            size,
            seq,
            0,
            size,
            usize::MAX,
            batch,
            &mut serial,
        )
    };
    Decoded {
        records: batch.len() - before,
        invalid: got.invalid,
        reached: got.reached,
        blocked: got.blocked,
    }
}

/// Encodes `events` one after the other into a zeroed block of `block_size`
/// bytes (kept within a ring's block sizes, [`MIN_BLOCK`] to [`MAX_BLOCK`],
/// and rounded up to a multiple of 8), as block `seq`, the way a writer
/// lays them out (truncation included: `max_message` bytes of message at
/// most, a record at most the block), stamped. Stops at the first event that
/// does not fit; returns the block and how many events it holds.
pub fn encode_block(
    events: &[Event<'_>],
    seq: u64,
    block_size: usize,
    max_message: usize,
) -> (Vec<u8>, usize) {
    let block_size = block_size.clamp(MIN_BLOCK as usize, MAX_BLOCK as usize);
    let mut words = vec![0u64; block_size.div_ceil(8)];
    let size = words.len() * 8;
    let base = words.as_mut_ptr() as *mut u8;
    let mut off = 0;
    let mut n = 0;
    for ev in events {
        let plan = Plan::new(ev, size, max_message);
        if off + placed(plan.len) > size {
            break;
        }
        let hdr = header(ev, &plan);
        // SAFETY: `off + placed(plan.len) <= size`: the record lies inside
        // `words`, which only this function touches; `base + off` is
        // 8-aligned (`off` is a sum of `placed` lengths).
        unsafe {
            let at = base.add(off);
            plan.write(at, &hdr, ev);
            (at as *mut u64).write(stamp(seq, plan.len as u32));
        }
        off += placed(plan.len);
        n += 1;
    }
    let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    (bytes, n)
}

/// The header a writer would give `ev` under `plan` (pid 1, thread 2,
/// severity clamped to 1-24, the event's own time).
fn header(ev: &Event<'_>, plan: &Plan) -> RecordHeader {
    let mut fl = if plan.truncated { flags::TRUNCATED } else { 0 };
    if ev.trace_id.is_some() {
        fl |= flags::HAS_TRACE;
    }
    if ev.span_id.is_some() {
        fl |= flags::HAS_SPAN;
    }
    RecordHeader {
        stamp: 0,
        time_ns: ev.time_ns,
        trace_id: ev.trace_id.unwrap_or_default(),
        span_id: ev.span_id.unwrap_or_default(),
        pid: 1,
        tid: 2,
        len: plan.len as u32,
        msg_len: plan.msg_len as u32,
        target_len: plan.target_len as u16,
        nfields: plan.nfields as u16,
        severity: ev.severity.clamp(1, 24),
        flags: fl,
        trace_flags: ev.trace_flags,
        resource: 0,
    }
}

#[cfg(test)]
mod tests {
    //! Small enough for Miri (`cargo +nightly miri test -p logbus-ring --lib
    //! fuzzing`): the encoder and decoder on buffers, including garbage.
    use super::*;
    use crate::event::{Field, Value};

    #[test]
    fn encoded_records_decode_to_what_was_emitted() {
        let fields = [
            Field {
                key: "user",
                value: Value::Str("ann é"),
            },
            Field {
                key: "n",
                value: Value::I64(-3),
            },
            Field {
                key: "u",
                value: Value::U64(u64::MAX),
            },
            Field {
                key: "f",
                value: Value::F64(0.5),
            },
            Field {
                key: "ok",
                value: Value::Bool(true),
            },
        ];
        let events = [
            Event {
                target: "app::db",
                fields: &fields,
                trace_id: Some([7; 16]),
                span_id: Some([9; 8]),
                trace_flags: 1,
                time_ns: 42,
                ..Event::new(13, "query done")
            },
            Event::new(1, ""),
            Event::new(200, "clamped"),
        ];
        let (block, n) = encode_block(&events, 5, 4096, 1024);
        assert_eq!(n, 3);
        let mut batch = Batch::new();
        let got = decode_block(&block, 5, &mut batch);
        assert_eq!(got.records, 3);
        assert_eq!(got.invalid, 0);
        let r = batch.get(0).unwrap();
        assert_eq!(
            (r.target(), r.message(), r.severity()),
            ("app::db", "query done", 13)
        );
        assert_eq!(
            (r.time_ns(), r.trace_id(), r.span_id()),
            (42, Some([7; 16]), Some([9; 8]))
        );
        assert_eq!(
            r.fields().collect::<Vec<_>>(),
            fields.iter().map(|f| (f.key, f.value)).collect::<Vec<_>>()
        );
        assert_eq!(batch.get(1).unwrap().message(), "");
        assert_eq!(batch.get(2).unwrap().severity(), 24);
        // Another block's sequence number: nothing is stamped for it.
        let mut other = Batch::new();
        let got = decode_block(&block, 6, &mut other);
        assert_eq!((got.records, got.blocked), (0, true));
    }

    #[test]
    fn long_parts_are_cut_on_char_boundaries_and_flagged() {
        let long = "€".repeat(400);
        let fields = [Field {
            key: &long,
            value: Value::Str(&long),
        }];
        let ev = Event {
            target: &long,
            fields: &fields,
            ..Event::new(9, &long)
        };
        let (block, n) = encode_block(&[ev], 0, 4096, 100);
        assert_eq!(n, 1);
        let mut batch = Batch::new();
        assert_eq!(decode_block(&block, 0, &mut batch).records, 1);
        let r = batch.get(0).unwrap();
        assert!(r.truncated());
        assert!(r.message().len() <= 100 && long.starts_with(r.message()));
        assert!(long.starts_with(r.target()));
        for (k, v) in r.fields() {
            assert!(k.len() <= 255 && long.starts_with(k));
            let Value::Str(v) = v else { panic!("{v:?}") };
            assert!(long.starts_with(v));
        }
    }

    #[test]
    fn garbage_is_skipped_and_counted() {
        let (mut block, n) =
            encode_block(&[Event::new(9, "one"), Event::new(9, "two")], 0, 4096, 64);
        assert_eq!(n, 2);
        // The first record's severity byte (offset 60) out of range: it
        // stays stamped, so it is skipped as invalid and the next one read.
        block[60] = 0;
        let mut batch = Batch::new();
        let got = decode_block(&block, 0, &mut batch);
        assert_eq!((got.records, got.invalid), (1, 1));
        assert_eq!(batch.get(0).unwrap().message(), "two");
        // Every byte value at every offset of a small block: no panic, no UB.
        let base = block[..256].to_vec();
        for i in (0..160).step_by(3) {
            for v in [0u8, 1, 0x3f, 0x80, 0xff] {
                let mut b = base.clone();
                b[i] = v;
                let mut batch = Batch::new();
                let got = decode_block(&b, 0, &mut batch);
                assert!(got.reached as usize <= b.len());
                for r in batch.iter() {
                    let _ = (r.target(), r.message(), r.fields().count());
                }
            }
        }
    }
}
