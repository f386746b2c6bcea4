//! Scribbles over a ring as a buggy or hostile process with write access
//! would: random 64-bit stores into the header's shared words, the block
//! descriptors and the blocks, for a while, then exits.
//!
//! `ring-scribble RING --seed S [--ms D] [--every-us U]`
//!
//! Deterministic for a seed (the offsets and values; not, of course, what the
//! ring's own processes do meanwhile). Half the stores are random words, half
//! the word already there nudged by a small amount, so that some cursors stay
//! plausible but wrong. Prints `stores N` at the end.

use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logbus_ring::layout::{HEADER_BYTES, MAGIC};
use logbus_ring::Geometry;

/// xorshift64*: small, seeded, good enough to pick offsets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let Some(path) = args.get(1) else {
        eprintln!("usage: ring-scribble RING --seed S [--ms D] [--every-us U]");
        return ExitCode::from(2);
    };
    let seed = get("--seed", 1);
    let ms = get("--ms", 3000);
    let every = Duration::from_micros(get("--every-us", 20));
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ring-scribble: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut head = [0u8; 128];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).expect("read the header");
    assert_eq!(head[..8], MAGIC, "not a ring");
    let geo = Geometry {
        block_size: u32::from_le_bytes(head[12..16].try_into().unwrap()),
        blocks: u32::from_le_bytes(head[16..20].try_into().unwrap()),
    };
    let len = geo.file_size() as usize;
    // SAFETY: a shared read-write mapping of the whole file, which we do not
    // shrink; other processes change it concurrently, which is why every
    // access below is atomic.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap");
    let base = base as *mut u8;
    // Shared words, descriptors, blocks: a third of the stores each.
    let areas = [
        (128, HEADER_BYTES),
        (geo.descs_offset(), geo.data_offset()),
        (geo.data_offset(), len),
    ];
    let mut rng = Rng(seed.max(1));
    let until = Instant::now() + Duration::from_millis(ms);
    let mut stores = 0u64;
    while Instant::now() < until {
        let (lo, hi) = areas[rng.below(3) as usize];
        let off = (lo as u64 + rng.below((hi - lo) as u64 / 8) * 8) as usize;
        // SAFETY: `off` is 8-aligned and inside the mapping; the word is
        // accessed atomically, as the ring's processes access it.
        let word = unsafe { &*(base.add(off) as *const AtomicU64) };
        let value = if rng.below(2) == 0 {
            rng.next()
        } else {
            let delta = rng.below(1024);
            let old = word.load(Ordering::Relaxed);
            if rng.below(2) == 0 {
                old.wrapping_add(delta)
            } else {
                old.wrapping_sub(delta)
            }
        };
        // Relaxed: nothing is published; garbage is the point.
        word.store(value, Ordering::Relaxed);
        stores += 1;
        std::thread::sleep(every);
    }
    println!("stores {stores}");
    ExitCode::SUCCESS
}
