//! The unchecked writer: appends into a `Vec<u8>` whose capacity was
//! reserved once per record for an upper bound of what the record can take
//! (`formatter::json_bound`), so that each piece costs a store, not a
//! capacity check and a `memcpy` call. Debug builds check every write
//! against the bound.

/// Writes into a `Vec<u8>` whose capacity was reserved up front, without a
/// capacity check (or a `memcpy` call for short pieces) per piece: the
/// collector formats millions of records a second and those checks and calls
/// were most of the cost.
pub(crate) struct Out {
    pub(crate) ptr: *mut u8,
    #[cfg(debug_assertions)]
    pub(crate) end: *mut u8,
}

impl Out {
    /// # Safety
    /// `out` must have at least `bound` bytes of spare capacity, and every
    /// write through the returned `Out` must stay within them.
    pub(crate) unsafe fn new(out: &mut Vec<u8>, bound: usize) -> Out {
        out.reserve(bound);
        let ptr = out.as_mut_ptr().add(out.len());
        Out {
            ptr,
            #[cfg(debug_assertions)]
            end: ptr.add(bound),
        }
    }

    /// Sets the length of `out` to cover everything written.
    ///
    /// # Safety
    /// `self` came from `Out::new(out, _)` and `out` was not touched since.
    pub(crate) unsafe fn finish(self, out: &mut Vec<u8>) {
        let len = self.ptr.offset_from(out.as_ptr()) as usize;
        out.set_len(len);
    }

    #[inline(always)]
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        #[cfg(debug_assertions)]
        assert!(
            self.ptr as usize + bytes.len() <= self.end as usize,
            "format bound"
        );
        // SAFETY: `new`'s contract: the reserved bound covers every write (the
        // bound is computed from the record's size in `json_bound`).
        unsafe {
            logbus_ring::mem::copy_small(bytes.as_ptr(), self.ptr, bytes.len());
            self.ptr = self.ptr.add(bytes.len());
        }
    }

    #[inline(always)]
    pub(crate) fn byte(&mut self, b: u8) {
        self.put(&[b]);
    }

    /// Stores all `N` bytes of `bytes` and keeps the first `n <= N`, as
    /// [`word`](Self::word) does for 8.
    #[inline(always)]
    pub(crate) fn fixed<const N: usize>(&mut self, bytes: &[u8; N], n: usize) {
        debug_assert!(n <= N);
        #[cfg(debug_assertions)]
        assert!(self.ptr as usize + N <= self.end as usize, "format bound");
        // SAFETY: as in `word`: the reserved bound covers `N` bytes here
        // (`json_bound`'s slack is hundreds of bytes; checked in debug builds).
        unsafe {
            (self.ptr as *mut [u8; N]).write_unaligned(*bytes);
            self.ptr = self.ptr.add(n);
        }
    }

    /// Stores the 8 bytes of `word` (first byte first in memory) and keeps
    /// the first `n <= 8` of them: one store instead of a copy. The bytes
    /// after the `n` kept ones are overwritten by what comes next (the
    /// reserved bound leaves room for them: every record ends with more than
    /// 8 bytes of fixed text).
    #[inline(always)]
    pub(crate) fn word(&mut self, word: [u8; 8], n: usize) {
        debug_assert!(n <= 8);
        #[cfg(debug_assertions)]
        assert!(self.ptr as usize + 8 <= self.end as usize, "format bound");
        // SAFETY: `new`'s contract: the reserved bound covers 8 bytes here
        // (`json_bound` has hundreds of bytes of slack past the longest
        // line; the debug assertion above checks it).
        unsafe {
            (self.ptr as *mut [u8; 8]).write_unaligned(word);
            self.ptr = self.ptr.add(n);
        }
    }
}
