//! `logbus create`: a new ring with the given geometry and mode.

use std::io::Write;

use anyhow::{bail, Result};
use logbus_ring::{ring_path, Level, Ring, RingOptions};

use crate::cli::CreateArgs;

/// Creates the ring (an existing file is an error) and prints one line about it.
pub fn run(args: &CreateArgs) -> Result<()> {
    let path = ring_path(args.ring.as_deref());
    let block_size = u32::try_from(args.block_size).unwrap_or(u32::MAX);
    if args.size / args.block_size.max(1) < u64::from(logbus_ring::layout::MIN_BLOCKS) {
        bail!(
            "{}: a ring of {} in blocks of {} has fewer than {} blocks",
            path.display(),
            human_bytes(args.size),
            human_bytes(args.block_size),
            logbus_ring::layout::MIN_BLOCKS
        );
    }
    if args.mode & 0o002 != 0 {
        bail!(
            "{}: mode {:04o} would let every user write the ring, and so crash its producers and collector; \
             share it with a group instead (mode 660 and LOGBUS_TRUST_GROUP)",
            path.display(),
            args.mode
        );
    }
    if args.mode & 0o020 != 0 && logbus_ring::trust::trusted_group().is_none() {
        bail!(
            "{}: mode {:04o} lets the ring's group write it; set LOGBUS_TRUST_GROUP to that group \
             (for this command and every program that uses the ring)",
            path.display(),
            args.mode
        );
    }
    let options = RingOptions {
        size: args.size,
        block_size,
        wait_ms: args.wait_ms,
        mode: args.mode,
        protect_severity: args.protect,
        ..RingOptions::default()
    };
    let ring = Ring::create(&path, &options)?;
    let g = ring.geometry();
    let protect = Level::from_severity(args.protect).map_or("?", Level::name);
    let mode = match ring.header().wait_ms {
        0 => "producers never wait".to_string(),
        ms => format!("lossless: producers wait up to {ms} ms for room"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created {}: {} blocks x {} ({} of records, file {}), mode {:04o}, {} and above protected, {}",
        path.display(),
        g.blocks,
        human_bytes(u64::from(g.block_size)),
        human_bytes(g.data_bytes()),
        human_bytes(g.file_size()),
        args.mode,
        protect,
        mode,
    )?;
    out.flush()?;
    Ok(())
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(super::human_bytes(100), "100 bytes");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(16 << 20), "16.0 MiB");
    }
}
