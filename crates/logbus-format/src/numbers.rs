//! Numbers and hex: integers written in place from the last digit back,
//! floats in their shortest round-trip form, eight digits or eight hex
//! digits computed in one register, and the digit tables they use.

use crate::out::Out;

/// Appends the decimal digits of `v`, written in place from the last digit
/// back (two at a time). Formatting into a stack buffer first and copying it
/// out (as `itoa` does) made every integer a store-forwarding stall: wide
/// loads over freshly stored single bytes; four integers a record made that a
/// quarter of `write_json`'s time.
#[inline]
pub(crate) fn put_u64(w: &mut Out, mut v: u64) {
    let n = decimal_digits(v);
    #[cfg(debug_assertions)]
    assert!(w.ptr as usize + n <= w.end as usize, "format bound");
    // SAFETY: `Out::new`'s contract: the reserved bound covers every write, and
    // `json_bound` allows 40 bytes per number; `n` is exactly `v`'s digit
    // count (`decimal_digits`, checked against `ilog10` by a test), so the
    // digits are written exactly into `[ptr, ptr + n)`, from the end back.
    unsafe {
        let mut p = w.ptr.add(n);
        w.ptr = p;
        while v >= 100 {
            let pair = &DIGIT_PAIRS[(v % 100) as usize];
            v /= 100;
            p = p.sub(2);
            std::ptr::copy_nonoverlapping(pair.as_ptr(), p, 2);
        }
        if v >= 10 {
            std::ptr::copy_nonoverlapping(DIGIT_PAIRS[v as usize].as_ptr(), p.sub(2), 2);
        } else {
            *p.sub(1) = b'0' + v as u8;
        }
    }
}

/// The number of decimal digits of `v` (1 for 0): from its bit length,
/// `floor(bits * log10(2))` (1233 / 4096 is log10(2) low by 2e-6, never
/// enough to be off at 64 bits) is the digit count of either `v` or a number
/// just below the next power of ten, which one comparison tells apart.
/// About 6 instructions, where `ilog10` takes 20-25.
#[inline(always)]
pub(crate) fn decimal_digits(v: u64) -> usize {
    const POW10: [u64; 20] = {
        let mut p = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            p[i] = p[i - 1] * 10;
            i += 1;
        }
        p
    };
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let t = (bits * 1233) >> 12;
    t + ((v | 1) >= POW10[t]) as usize
}

#[inline]
pub(crate) fn put_i64(w: &mut Out, v: i64) {
    if v < 0 {
        w.byte(b'-');
    }
    put_u64(w, v.unsigned_abs());
}

/// A finite float, shortest round-trip form (as `ryu`, which it falls back to).
///
/// Fast path for values with at most three decimals (latencies, ratios): if
/// `n / 1000.0 == f` for an integer `n`, the decimal `n/1000` reads back as
/// exactly `f` (division and parsing both round correctly), and no shorter
/// decimal can: two decimals of at most three places differ by 0.001, far more
/// than neighbouring doubles below 1e12. Written as ryu would: `12.5`, `3.0`.
#[inline]
pub(crate) fn put_f64(w: &mut Out, f: f64) {
    let scaled = f * 1000.0;
    // `scaled as i64` is exact below 1e15 (< 2^63); comparing it back is
    // `scaled.trunc() == scaled` without a call into libm.
    let n = scaled as i64;
    if f.abs() < 1e12 && n as f64 == scaled && scaled / 1000.0 == f {
        let (int, frac) = (n / 1000, (n % 1000).unsigned_abs());
        if int == 0 && f.is_sign_negative() {
            w.byte(b'-');
        }
        put_i64(w, int);
        // The decimals from a table: `.` and three digits, and how many of
        // those four bytes to keep (trailing zeros dropped, one digit kept).
        let [dot, d0, d1, d2, keep] = DECIMALS[frac as usize % 1000];
        w.word([dot, d0, d1, d2, 0, 0, 0, 0], keep as usize);
        return;
    }
    w.put(ryu::Buffer::new().format_finite(f).as_bytes());
}

/// The eight decimal digits of `v < 10^8`, zero-padded, most significant
/// first, computed in one register (two 4-digit halves, then four 2-digit
/// quarters, then eight digits, each split by a multiply and shift that
/// divides every part at once).
#[inline(always)]
pub(crate) fn eight_digits(v: u32) -> [u8; 8] {
    debug_assert!(v < 100_000_000);
    let v = v as u64;
    let hi = v / 10_000;
    let lo = v - hi * 10_000;
    // Parts of 32 bits, the more significant half first (in memory order).
    let x = hi | lo << 32;
    // x / 100 per part: exact for parts below 10,000 (x * 10486 >> 20).
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = x - hundreds * 100;
    // Parts of 16 bits: [hundreds, rest] per half.
    let x = hundreds | x << 16;
    // x / 10 per 16-bit part: exact for parts below 100 (x * 103 >> 10).
    let tens = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    let x = x - tens * 10;
    // Parts of 8 bits: [tens, units] per quarter.
    let digits = tens | x << 8;
    (digits | 0x3030_3030_3030_3030).to_le_bytes()
}

/// For `f` in 0..1000: `.`, the three digits of `f`, and the bytes of
/// those to write: ryu's form of a float's decimals (`.5`, `.25`, `.125`,
/// `.0`).
pub(crate) static DECIMALS: [[u8; 5]; 1000] = {
    let mut t = [[0u8; 5]; 1000];
    let mut f = 0;
    while f < 1000 {
        let keep = if f % 100 == 0 {
            2
        } else if f % 10 == 0 {
            3
        } else {
            4
        };
        t[f] = [
            b'.',
            b'0' + (f / 100) as u8,
            b'0' + (f / 10 % 10) as u8,
            b'0' + (f % 10) as u8,
            keep,
        ];
        f += 1;
    }
    t
};

pub(crate) static DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

pub(crate) static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

#[inline(always)]
pub(crate) fn put_hex(w: &mut Out, bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(4);
    for c in &mut chunks {
        w.word(hex_word(u32::from_be_bytes([c[0], c[1], c[2], c[3]])), 8);
    }
    for &b in chunks.remainder() {
        w.put(&HEX_PAIRS[b as usize]);
    }
}

/// The 8 lowercase hex digits of `v`, most significant first, computed in
/// one register: the nibbles spread one per byte, then turned into digits
/// ('0' + n, plus 39 more for n > 9, which lands on 'a'..'f').
#[inline(always)]
pub(crate) fn hex_word(v: u32) -> [u8; 8] {
    let x = v as u64;
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    let x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // 0x01 in each byte whose nibble is above 9 (adding 6 carries into bit 4).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}
