//! Shared memory is untrusted input: foreign files are refused with a clear
//! one-line error, and garbage inside a ring is skipped and counted, never a
//! panic, an out-of-bounds read or a hang.

mod common;
use common::TempDir;
use logbus_ring::layout::{StaticHeader, MAGIC, VERSION};
use logbus_ring::*;

fn small() -> RingOptions {
    RingOptions {
        size: 128 << 10,
        block_size: 4096,
        ..RingOptions::default()
    }
}

fn open_err(path: &std::path::Path) -> String {
    let e = Ring::open_existing(path).err().expect("must be refused");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

#[test]
fn foreign_and_damaged_files_get_a_one_line_error_naming_the_problem() {
    let dir = TempDir::new("foreign");
    let p = dir.path("f");

    std::fs::write(&p, b"").unwrap();
    assert!(open_err(&p).contains("not a logbus ring"));

    std::fs::write(&p, b"hello, this is a text file and not a ring at all").unwrap();
    assert!(open_err(&p).contains("not a logbus ring"));

    // A real ring, then damaged in different ways.
    let ring_path = dir.path("r");
    drop(Ring::create(&ring_path, &small()).unwrap());
    let good = std::fs::read(&ring_path).unwrap();
    let header: StaticHeader = bytemuck::pod_read_unaligned(&good[..128]);
    assert_eq!(header.magic, MAGIC);

    let mut v = good.clone();
    v[8..12].copy_from_slice(&(VERSION + 6).to_le_bytes());
    std::fs::write(&p, &v).unwrap();
    assert!(open_err(&p).contains(&format!("version {}", VERSION + 6)));

    // A ring of an older layout (version 1) is refused, saying what to do.
    let mut v = good.clone();
    v[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&p, &v).unwrap();
    let e = open_err(&p);
    assert!(e.contains("version 1") && e.contains("older"), "{e}");

    std::fs::write(&p, &good[..good.len() / 2]).unwrap();
    assert!(open_err(&p).contains("truncated"));

    std::fs::write(&p, &good[..100]).unwrap();
    assert!(open_err(&p).contains("truncated"));

    let mut v = good.clone();
    v[12..16].copy_from_slice(&100u32.to_le_bytes()); // block size not a power of two
    std::fs::write(&p, &v).unwrap();
    assert!(open_err(&p).contains("block size"));

    let mut v = good;
    v[16..20].copy_from_slice(&3u32.to_le_bytes()); // 3 blocks
    std::fs::write(&p, &v).unwrap();
    assert!(open_err(&p).contains("blocks"));

    let missing = dir.path("missing");
    assert!(open_err(&missing).contains("No such file"));
}

#[test]
fn a_second_create_never_reinitialises_a_ring_in_use() {
    let dir = TempDir::new("reinit");
    let p = dir.path("r");
    let ring = Ring::create(&p, &small()).unwrap();
    ring.writer()
        .unwrap()
        .emit(&Event::new(9, "keep me"))
        .unwrap();
    assert!(Ring::create(&p, &small()).is_err());
    let other = Ring::open_with(
        &p,
        &RingOptions {
            block_size: 8192,
            ..small()
        },
    )
    .unwrap();
    assert_eq!(
        other.geometry().block_size,
        4096,
        "the existing geometry wins"
    );
    assert_eq!(other.stats().total().unread, 1);
}

#[test]
fn new_rings_get_mode_0600_unless_told() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    Ring::create(dir.path("a"), &small()).unwrap();
    Ring::create(
        dir.path("b"),
        &RingOptions {
            mode: 0o640,
            ..small()
        },
    )
    .unwrap();
    let mode = |n| std::fs::metadata(dir.path(n)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("a"), 0o600);
    assert_eq!(mode("b"), 0o640);
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

/// Scribbles random bytes over a ring holding records, then reads it with
/// every reader. Passing means: no panic, no hang, and what is read is valid.
#[test]
fn random_garbage_in_a_live_ring_is_skipped_and_counted() {
    let dir = TempDir::new("garbage");
    let seed = now_ns();
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let mut total_invalid = 0u64;
    for round in 0..300 {
        let p = dir.path(&format!("r{round}"));
        let ring = Ring::create(&p, &small()).unwrap();
        {
            let mut writers: Vec<_> = (0..4).map(|_| ring.writer().unwrap()).collect();
            for i in 0..200 {
                let msg = "m".repeat((rng.next() % 500) as usize);
                let fields = [
                    Field {
                        key: "i",
                        value: Value::U64(i),
                    },
                    Field {
                        key: "s",
                        value: Value::Str("txt"),
                    },
                ];
                let ev = Event {
                    fields: &fields,
                    target: "t",
                    ..Event::new(1 + (rng.next() % 24) as u8, &msg)
                };
                writers[(i % 4) as usize].emit(&ev).unwrap();
            }
        }
        // Scribble: a few runs of random bytes anywhere past the static header
        // (shared words, resource table, block descriptors, data).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        // SAFETY: the file is ours and stays open; the writers above are gone
        // and no reader runs while we scribble.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file).unwrap() };
        let len = map.len();
        // Block descriptors and the shared words: the interesting parts.
        let descs = ring.geometry().data_offset() - 32 * 64;
        for _ in 0..(1 + rng.next() % 6) {
            let at = if rng.next().is_multiple_of(3) {
                descs + (rng.next() as usize % (32 * 64))
            } else if rng.next().is_multiple_of(2) {
                128 + (rng.next() as usize % 1024)
            } else {
                128 + rng.next() as usize % (len - 128)
            };
            let n = 1 + rng.next() as usize % 64;
            for b in &mut map[at..(at + n).min(len)] {
                *b = rng.next() as u8;
            }
        }
        drop(map);
        // Every reader must terminate and only hand out valid records.
        let mut batch = Batch::new();
        let mut peek = Peeker::new(&ring);
        for _ in 0..10 {
            peek.poll(&mut batch, 10_000);
        }
        let _ = ring.stats();
        let mut c = Consumer::acquire(&ring).unwrap();
        let mut polls = 0;
        while c.poll(&mut batch, 10_000) > 0 {
            for r in batch.iter() {
                // Accessors on validated records cannot fail.
                let _ = (
                    r.message().len(),
                    r.target().len(),
                    r.fields().count(),
                    r.level(),
                );
            }
            c.commit_all();
            polls += 1;
            assert!(
                polls < 1000,
                "the consumer does not converge (round {round})"
            );
        }
        for tag in 0..=255u8 {
            let _ = ring.resource(tag, std::process::id());
        }
        total_invalid = total_invalid.saturating_add(ring.stats().invalid.min(1 << 40));
        // The ring stays usable: writing never panics (it may refuse).
        if let Ok(mut w) = ring.writer() {
            w.emit(&Event::new(9, "after")).unwrap();
        }
    }
    assert!(
        total_invalid > 0,
        "garbage was detected at least once in 300 rounds"
    );
}
