//! Byte copying for hot paths that write many short pieces (a record's keys,
//! target and values; a JSON line's punctuation and numbers), shared by the
//! ring's writer and `logbus-format`.

/// `copy_nonoverlapping`, with lengths up to 16 bytes done inline: a call into
/// libc's memcpy for each short piece costs more than the copy.
///
/// ```
/// let src = *b"hello, ring";
/// let mut dst = [0u8; 11];
/// // SAFETY: both buffers are 11 bytes and distinct.
/// unsafe { logbus_ring::mem::copy_small(src.as_ptr(), dst.as_mut_ptr(), 11) };
/// assert_eq!(&dst, b"hello, ring");
/// ```
///
/// # Safety
/// As `copy_nonoverlapping`: `src` readable and `dst` writable for `len` bytes,
/// not overlapping.
#[inline(always)]
pub unsafe fn copy_small(src: *const u8, dst: *mut u8, len: usize) {
    if len > 16 {
        std::ptr::copy_nonoverlapping(src, dst, len);
    } else if len >= 8 {
        // Two possibly overlapping 8-byte moves cover 8..=16 bytes.
        let a = (src as *const u64).read_unaligned();
        let b = (src.add(len - 8) as *const u64).read_unaligned();
        (dst as *mut u64).write_unaligned(a);
        (dst.add(len - 8) as *mut u64).write_unaligned(b);
    } else if len >= 4 {
        let a = (src as *const u32).read_unaligned();
        let b = (src.add(len - 4) as *const u32).read_unaligned();
        (dst as *mut u32).write_unaligned(a);
        (dst.add(len - 4) as *mut u32).write_unaligned(b);
    } else {
        for i in 0..len {
            *dst.add(i) = *src.add(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_small;

    /// Every length of each branch (and past them), at every alignment of
    /// source and destination within a word: the bytes copied and none
    /// around them touched. Small enough for Miri, which checks each access.
    #[test]
    fn copies_exactly_len_bytes_at_any_alignment() {
        let src: Vec<u8> = (1..=64).collect();
        for len in 0..=40 {
            for (s, d) in [(0, 0), (1, 3), (7, 5), (3, 0)] {
                let mut dst = [0u8; 64];
                // SAFETY: `src[s..]` has `64 - s >= len` readable bytes,
                // `dst[d..]` `64 - d >= len` writable ones; distinct arrays.
                unsafe { copy_small(src.as_ptr().add(s), dst.as_mut_ptr().add(d), len) };
                assert_eq!(&dst[d..d + len], &src[s..s + len], "len {len} at {s}->{d}");
                assert!(dst[..d].iter().chain(&dst[d + len..]).all(|&b| b == 0));
            }
        }
    }
}
