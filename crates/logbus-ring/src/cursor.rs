//! The lane cursor word: the consumer's commit point and claim point in one
//! `AtomicU64`, so that the consumer's claims and a producer's evictions are
//! arbitrated by a single compare-and-swap.
//!
//! Bits 0-31 hold the low 32 bits of `head` (everything before it is finished
//! with: delivered and committed, or evicted), bits 32-63 the low 32 bits of
//! `read` (everything before it has been claimed by the consumer or evicted).
//! Full 64-bit positions are rebuilt from the lane's `tail`, which is never more
//! than one lane (< 2^31 slots) ahead of either: `pos = tail - (tail32 - pos32)`.
//! Invariant (for a well-behaved ring): `head <= read <= tail <= head + slots`.

/// Positions above this are garbage (a real lane would need centuries to get
/// there); rejecting them keeps every `pos + n` free of overflow.
pub(crate) const MAX_POS: u64 = 1 << 62;

/// `head` and `read` of a lane, as full positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub head: u64,
    pub read: u64,
}

impl Cursor {
    #[inline]
    pub fn pack(self) -> u64 {
        (self.head as u32 as u64) | ((self.read as u32 as u64) << 32)
    }

    /// Rebuilds the positions relative to `tail`; `None` when the word cannot
    /// belong to a lane of `slots` slots with this tail (garbage).
    #[inline]
    pub fn unpack(word: u64, tail: u64, slots: u64) -> Option<Cursor> {
        let t32 = tail as u32;
        let back_head = t32.wrapping_sub(word as u32) as u64;
        let back_read = t32.wrapping_sub((word >> 32) as u32) as u64;
        if tail > MAX_POS || back_head > slots || back_read > back_head || back_head > tail {
            return None;
        }
        Some(Cursor {
            head: tail - back_head,
            read: tail - back_read,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_the_32_bit_wrap() {
        for tail in [0u64, 5, 1 << 32, (1 << 32) + 3, MAX_POS] {
            for (dh, dr) in [(0, 0), (16, 0), (16, 16), (16, 8)] {
                if dh > tail {
                    continue;
                }
                let c = Cursor {
                    head: tail - dh,
                    read: tail - dr,
                };
                assert_eq!(Cursor::unpack(c.pack(), tail, 16), Some(c));
            }
        }
    }

    #[test]
    fn rejects_impossible_words() {
        // head more than a lane behind the tail
        let c = Cursor { head: 0, read: 0 };
        assert_eq!(Cursor::unpack(c.pack(), 17, 16), None);
        // read behind head
        let c = Cursor { head: 10, read: 9 };
        assert_eq!(Cursor::unpack(c.pack(), 12, 16), None);
        // read ahead of tail
        assert_eq!(
            Cursor::unpack(Cursor { head: 10, read: 13 }.pack(), 12, 16),
            None
        );
    }
}
