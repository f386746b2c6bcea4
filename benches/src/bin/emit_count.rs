//! A fixed number of emits of the benchmark record (that of `benches/emit.rs`)
//! through [`time_emits`], for counting instructions per emit with callgrind:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='*time_emits*' \
//!     target/release/emit_count 100000
//! ```
//!
//! The collected instructions divided by the records emitted (printed) are
//! the emit path's instructions per record, clock read included. This file
//! uses only the API that the ring before the block design (commit fcfca29)
//! had as well, so the same file builds on both sides of a before/after
//! comparison.

use logbus_benches::{fail, time_emits, Competitor, RingCompetitor};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap_or_else(|e| fail(format_args!("{a}: {e}"))))
        .unwrap_or(100_000);
    let ring = RingCompetitor::new();
    let mut w = ring.emitter();
    let mut left = n;
    while left > 0 {
        let k = left.min(ring.chunk());
        time_emits(&mut w, k);
        ring.reset();
        left -= k;
    }
    ring.check_nothing_lost();
    println!("{n} records emitted");
}
