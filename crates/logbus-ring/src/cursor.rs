//! The lane cursor word: the consumer's commit point and claim point in one
//! `AtomicU64`, so that the consumer's claims and a producer's evictions are
//! arbitrated by a single compare-and-swap.
//!
//! ```text
//! bit 63        bits 32-62          bit 31        bits 0-30
//! (unused, 0)   read (low 31 bits)  EVICTING      head (low 31 bits)
//! ```
//!
//! `head`: everything before it is finished with (delivered and committed, or
//! evicted). `read`: everything before it has been claimed by the consumer, or
//! by an evicting producer. `EVICTING`: the lane's producer owns `[head, read)`
//! while it moves protected records over an evicted one; readers leave the lane
//! alone until the flag is gone. Full 64-bit positions are rebuilt from the
//! lane's `tail`, which is never more than one lane (at most 2^24 slots) ahead:
//! `pos = tail - ((tail - pos31) mod 2^31)`.
//! Invariant (for a well-behaved ring): `head <= read <= tail <= head + slots`.

/// Positions above this are garbage (a real lane would need centuries to get
/// there); rejecting them keeps every `pos + n` free of overflow.
pub(crate) const MAX_POS: u64 = 1 << 62;

const MASK31: u64 = (1 << 31) - 1;
const EVICTING: u64 = 1 << 31;

/// `head` and `read` of a lane, as full positions, and the evicting flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub head: u64,
    pub read: u64,
    pub evicting: bool,
}

impl Cursor {
    /// A cursor with the flag clear.
    #[inline]
    pub fn at(head: u64, read: u64) -> Cursor {
        Cursor {
            head,
            read,
            evicting: false,
        }
    }

    #[inline]
    pub fn pack(self) -> u64 {
        (self.head & MASK31) | ((self.evicting as u64) << 31) | ((self.read & MASK31) << 32)
    }

    /// Rebuilds the positions relative to `tail`; `None` when the word cannot
    /// belong to a lane of `slots` slots with this tail (garbage).
    #[inline]
    pub fn unpack(word: u64, tail: u64, slots: u64) -> Option<Cursor> {
        let back_head = tail.wrapping_sub(word) & MASK31;
        let back_read = tail.wrapping_sub(word >> 32) & MASK31;
        if tail > MAX_POS
            || word >> 63 != 0
            || back_head > slots
            || back_read > back_head
            || back_head > tail
        {
            return None;
        }
        Some(Cursor {
            head: tail - back_head,
            read: tail - back_read,
            evicting: word & EVICTING != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_the_32_bit_wrap() {
        for tail in [0u64, 5, 1 << 31, (1 << 32) + 3, MAX_POS] {
            for (dh, dr) in [(0, 0), (16, 0), (16, 16), (16, 8)] {
                if dh > tail {
                    continue;
                }
                for evicting in [false, true] {
                    let c = Cursor {
                        head: tail - dh,
                        read: tail - dr,
                        evicting,
                    };
                    assert_eq!(Cursor::unpack(c.pack(), tail, 16), Some(c));
                }
            }
        }
    }

    #[test]
    fn rejects_impossible_words() {
        // head more than a lane behind the tail
        let c = Cursor::at(0, 0);
        assert_eq!(Cursor::unpack(c.pack(), 17, 16), None);
        // read behind head
        let c = Cursor::at(10, 9);
        assert_eq!(Cursor::unpack(c.pack(), 12, 16), None);
        // read ahead of tail
        assert_eq!(Cursor::unpack(Cursor::at(10, 13).pack(), 12, 16), None);
    }
}
