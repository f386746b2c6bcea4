//! What the fuzz targets (fuzz/, docs/FUZZING.md) found, each as a plain
//! test on a real ring: the shared state the fuzzer made, written into a
//! ring's file the way another process with write access could.

mod common;
use common::TempDir;
use logbus_ring::layout::BLOCK_DESC_BYTES;
use logbus_ring::*;

fn small() -> RingOptions {
    RingOptions {
        size: 16 << 10,
        block_size: 4096,
        ..RingOptions::default()
    }
}

/// A ring holding one closed block with one record; returns the ring, the
/// file offset of that block's descriptor and its sequence number.
fn one_record(dir: &TempDir, name: &str) -> (Ring, std::path::PathBuf, usize, u64) {
    let p = dir.path(name);
    let ring = Ring::create(&p, &small()).unwrap();
    ring.writer()
        .unwrap()
        .emit(&Event::new(9, "hello"))
        .unwrap();
    let geo = ring.geometry();
    let bytes = std::fs::read(&p).unwrap();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    // The one descriptor whose `reserve` word has bytes handed out.
    let (desc, reserve) = (0..geo.blocks as usize)
        .map(|i| geo.descs_offset() + i * BLOCK_DESC_BYTES)
        .map(|at| (at, word(at)))
        .find(|&(_, r)| r & 0x3fff_fff8 != 0)
        .expect("the written block");
    (ring, p, desc, reserve >> 32)
}

/// Writes `value` over the 8 bytes at `at` of the file (through a mapping
/// of our own, as another process would).
fn poke(path: &std::path::Path, at: usize, value: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    // SAFETY: the file is ours; nobody else maps it for writing meanwhile.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file).unwrap() };
    map[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// ring_file, crash-5c11d84d: a block's committed end (`done`, where a new
/// consumer resumes) not a multiple of 8. The consumer looked for a record
/// there with an 8-byte atomic load at a misaligned address (undefined
/// behaviour; a panic in debug builds) when asked whether the ring was
/// drained; an ended block past the block's size made it read beyond the
/// block. Now no record is found at such an offset, and no read leaves the
/// block.
#[test]
fn a_committed_end_that_is_no_record_start_is_never_read_at() {
    let dir = TempDir::new("fuzz-done");
    for (name, done, end) in [
        ("odd", 3u32, None),
        ("past-block", 4096 + 8, Some(1u64 << 29)),
        ("past-block-odd", 4096 + 3, Some((1u64 << 29) - 8)),
    ] {
        let (ring, path, desc, seq) = one_record(&dir, name);
        // `done` is the descriptor's third word: `seq << 32 | end`.
        poke(&path, desc + 16, (seq as u32 as u64) << 32 | done as u64);
        if let Some(end) = end {
            // `reserve`: the same sequence number, CLOSED, `end` handed out.
            poke(&path, desc, (seq as u32 as u64) << 32 | 1 << 31 | end);
        }
        let mut consumer = Consumer::acquire(&ring).unwrap();
        let _ = consumer.is_drained();
        let mut batch = Batch::new();
        for _ in 0..3 {
            consumer.poll(&mut batch, 100);
            for r in batch.iter() {
                assert_eq!(r.message(), "hello", "{name}");
            }
            consumer.commit_all();
            let _ = consumer.is_drained();
        }
    }
}
