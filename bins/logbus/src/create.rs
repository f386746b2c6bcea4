//! `logbus create`: a new ring with the given geometry and mode.

use std::io::Write;

use anyhow::{bail, Result};
use logbus_ring::{ring_path, Level, Ring, RingOptions};

use crate::cli::CreateArgs;

/// Creates the ring (an existing file is an error) and prints one line about it.
pub fn run(args: &CreateArgs) -> Result<()> {
    let path = ring_path(args.ring.as_deref());
    // The ring crate would quietly use fewer lanes; say so instead.
    if args.lanes == 0 || u64::from(args.lanes) * 16 > u64::from(args.slots) {
        bail!(
            "{}: {} lanes need at least {} slots (16 a lane), not {}",
            path.display(),
            args.lanes,
            u64::from(args.lanes.max(1)) * 16,
            args.slots
        );
    }
    let options = RingOptions {
        slots: args.slots,
        slot_size: args.slot_size,
        lanes: args.lanes,
        mode: args.mode,
        protect_severity: args.protect,
        ..RingOptions::default()
    };
    let ring = Ring::create(&path, &options)?;
    let g = ring.geometry();
    let protect = Level::from_severity(args.protect).map_or("?", Level::name);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created {}: {} lanes x {} slots x {} bytes ({} slots, {}), mode {:04o}, {} and above protected",
        path.display(),
        g.lanes,
        g.slots_per_lane,
        g.slot_size,
        g.slots(),
        human_bytes(g.file_size()),
        args.mode,
        protect,
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
