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
