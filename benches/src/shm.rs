//! Output files of the compare harness on `/dev/shm`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::fail;

/// Lines (newlines) in `path`.
pub fn count_lines(path: &Path) -> u64 {
    let mut f = File::open(path).unwrap_or_else(|e| fail(format_args!("{}: {e}", path.display())));
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return n,
            Ok(k) => n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) => fail(e),
        }
    }
}

/// Writes `bytes` to a file in `dir` and deletes it, so that the run that
/// follows gets its tmpfs pages from memory just freed. This machine is a VM
/// whose kernel reports free memory back to the host (`page_reporting`): a
/// page it has reported costs a host fault when used again, which made file
/// runs vary threefold (see `recycle_memory` in `throughput.rs`).
pub fn recycle_memory(dir: &Path, bytes: u64) {
    let path = dir.join(format!("logbus-compare-recycle-{}", std::process::id()));
    let chunk = vec![b'\n'; 64 << 10];
    let mut f = File::create(&path).unwrap_or_else(|e| fail(e));
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).unwrap_or_else(|e| fail(e));
        left -= n as u64;
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
}
