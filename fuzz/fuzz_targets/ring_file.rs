//! A whole ring file made of arbitrary bytes, opened and read as `logbus
//! dump` reads one (read-only mapping, a `Peeker`, polls bounded by one
//! ring's worth, sorted, each record's service looked up in the resource
//! table and formatted) and as `logbus drain` and the collector do (the
//! consumer role: polls, commits), plus the counters `logbus stat` shows.
//!
//! The input is written to one file per fuzzing process (removed at exit),
//! mode 0600, so that the trust checks pass and the bytes are what is judged.
//! A file that is not a ring must be refused with an error, never a panic;
//! one that opens must be read to the end of the bound without a panic, an
//! out-of-bounds access or a hang.
#![no_main]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use logbus_ring::{Batch, Consumer, Peeker, Ring};

/// The scratch ring file of this process.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        extern "C" fn remove() {
            if let Some(p) = PATH.get() {
                let _ = std::fs::remove_file(p);
            }
        }
        // SAFETY: `remove` is a plain function that only unlinks a file.
        unsafe { libc::atexit(remove) };
        std::env::temp_dir().join(format!("logbus-fuzz-ring-{}", std::process::id()))
    })
}

/// One ring's worth of records, the bound of `dump` and `drain`.
fn worth(ring: &Ring) -> usize {
    usize::try_from(ring.geometry().data_bytes() / 64).unwrap_or(usize::MAX)
}

fn format(ring: &Ring, batch: &Batch, line: &mut Vec<u8>) {
    for r in batch.iter() {
        let _ = ring.resource_generation(r.resource());
        let service = ring.resource(r.resource(), r.pid()).map(|res| res.service);
        line.clear();
        logbus_format::write_json_as(line, &r, service.as_deref(), Some(ring.owner()));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        serde_json::from_slice::<serde_json::Value>(line).expect("a JSON line");
    }
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("scratch file");
    file.write_all(data).expect("write the scratch file");
    drop(file);
    let mut line = Vec::new();
    let mut batch = Batch::new();

    // `logbus dump` and `logbus stat`.
    if let Ok(ring) = Ring::open_read_only(path) {
        let _ = ring.stats();
        let _ = (ring.header(), ring.check_size(), ring.faulted());
        let mut peeker = Peeker::new(&ring);
        let mut budget = worth(&ring);
        while budget > 0 && peeker.poll(&mut batch, worth(&ring)) > 0 {
            budget = budget.saturating_sub(batch.len());
            batch.sort_by_time();
            format(&ring, &batch, &mut line);
        }
        let _ = peeker.missed();
    }

    // `logbus drain` and the collector's reader: the consumer role.
    if let Ok(ring) = Ring::open_existing(path) {
        if let Ok(mut consumer) = Consumer::acquire(&ring) {
            let mut budget = worth(&ring);
            while budget > 0 && consumer.poll(&mut batch, worth(&ring)) > 0 {
                budget = budget.saturating_sub(batch.len());
                format(&ring, &batch, &mut line);
                consumer.commit_all();
            }
            consumer.commit_all();
            let _ = (consumer.is_drained(), consumer.has_inflight());
        }
        let _ = ring.stats();
    }
});
