//! Each producer's own books, kept so that they survive its SIGKILL.
//!
//! A ledger is a small file the producer maps shared and updates as it
//! goes; the kernel keeps a shared mapping's stores in the page cache, so
//! what a killed producer last stored is what the harness reads. One slot of
//! [`SLOT_WORDS`] little-endian `u64` per thread:
//!
//! | word | meaning |
//! |---|---|
//! | 0 `started` | records whose emit call was entered (stored before the call; the reader sums words 2..8 instead, which a kill cannot leave half-stored) |
//! | 1 `done` | records whose emit call returned (stored after it) |
//! | 2..8 | `started` per level, TRACE .. FATAL (stored before the call) |
//! | 8 `level` | level of the last record started (stored before `started`) |
//! | 9..16 | unused |
//!
//! Only that thread writes its slot. `started - done` is 0 or 1: a record in
//! flight when the producer was killed may be in the ring (published or
//! torn) or not at all, so the books allow for it (see `books.rs`).
//!
//! The shell producer cannot map a file; it appends a line `<seq> <level>`
//! before each `logbus emit` and `<seq> ok|err` after it ([`read_shell`]).

use std::path::Path;

/// Words per thread slot.
pub const SLOT_WORDS: usize = 16;
/// Bytes per thread slot.
pub const SLOT_BYTES: usize = SLOT_WORDS * 8;
/// Levels counted, TRACE .. FATAL.
pub const LEVELS: usize = 6;

/// One thread's books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadBooks {
    /// Emit calls entered.
    pub started: u64,
    /// Emit calls returned.
    pub done: u64,
    /// Emit calls entered, per level.
    pub per_level: [u64; LEVELS],
    /// Level of the record in flight, when `started > done`.
    pub in_flight_level: Option<usize>,
}

/// Reads a mapped ledger (`threads` slots); a missing or short file reads as
/// zeros (a producer killed before it made its ledger emitted nothing).
pub fn read(path: &Path, threads: usize) -> Vec<ThreadBooks> {
    let bytes = std::fs::read(path).unwrap_or_default();
    (0..threads)
        .map(|t| {
            let word = |i: usize| {
                let at = t * SLOT_BYTES + i * 8;
                bytes
                    .get(at..at + 8)
                    .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            };
            let mut per_level = [0; LEVELS];
            for (l, n) in per_level.iter_mut().enumerate() {
                *n = word(2 + l);
            }
            // The per-level words are the truth: a kill between the store
            // of a level word and that of `started` must not count a record
            // twice or not at all.
            let started: u64 = per_level.iter().sum();
            let done = word(1).min(started);
            ThreadBooks {
                started,
                done,
                per_level,
                in_flight_level: (started > done).then_some(word(8) as usize % LEVELS),
            }
        })
        .collect()
}

/// Reads a shell producer's ledger (one thread). A record whose `ok` line is
/// missing is in flight (the shell was killed, its `logbus emit` may have
/// run); one marked `err` was refused by `logbus emit` and is not counted.
pub fn read_shell(path: &Path) -> ThreadBooks {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut b = ThreadBooks::default();
    let mut pending: Option<usize> = None;
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(_seq), Some(what)) = (w.next(), w.next()) else {
            continue; // a line cut by the kill
        };
        match what {
            "ok" => {
                if pending.take().is_some() {
                    b.done += 1;
                }
            }
            "err" => {
                if let Some(l) = pending.take() {
                    b.started -= 1;
                    b.per_level[l] -= 1;
                }
            }
            level => {
                if let Ok(l) = level.parse::<usize>() {
                    if l < LEVELS {
                        b.started += 1;
                        b.per_level[l] += 1;
                        pending = Some(l);
                    }
                }
            }
        }
    }
    b.in_flight_level = pending;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_ledger_counts_refused_and_in_flight_records() {
        let dir = logbus_testkit::TempDir::new("ledger");
        let p = dir.path("l");
        std::fs::write(&p, "0 2\n0 ok\n1 4\n1 err\n2 5\n2 ok\n3 1\n").unwrap();
        let b = read_shell(&p);
        assert_eq!(b.started, 3);
        assert_eq!(b.done, 2);
        assert_eq!(b.per_level, [0, 1, 1, 0, 0, 1]);
        assert_eq!(b.in_flight_level, Some(1));
    }

    #[test]
    fn a_mapped_ledger_reads_its_words_and_a_missing_one_reads_as_zero() {
        let dir = logbus_testkit::TempDir::new("ledger");
        let p = dir.path("l");
        let mut bytes = vec![0u8; 2 * SLOT_BYTES];
        bytes[SLOT_BYTES..SLOT_BYTES + 8].copy_from_slice(&7u64.to_le_bytes());
        bytes[SLOT_BYTES + 8..SLOT_BYTES + 16].copy_from_slice(&6u64.to_le_bytes());
        bytes[SLOT_BYTES + 16 + 3 * 8..SLOT_BYTES + 16 + 4 * 8]
            .copy_from_slice(&7u64.to_le_bytes());
        bytes[SLOT_BYTES + 8 * 8..SLOT_BYTES + 9 * 8].copy_from_slice(&3u64.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let b = read(&p, 2);
        assert_eq!(b[0], ThreadBooks::default());
        assert_eq!((b[1].started, b[1].done, b[1].per_level[3]), (7, 6, 7));
        assert_eq!(b[1].in_flight_level, Some(3));
        assert_eq!(read(&dir.path("none"), 1)[0], ThreadBooks::default());
    }
}
