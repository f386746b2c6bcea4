//! Time: a record's nanoseconds as RFC 3339 UTC, the
//! `YYYY-MM-DDTHH:MM:SS.` text of the last second kept by the [`Formatter`]
//! (records of a batch nearly all fall in the same second), the rest
//! computed per record.

use crate::formatter::Formatter;
use crate::numbers::eight_digits;
use crate::out::Out;

impl Formatter {
    /// `ns` as RFC 3339 (30 bytes), from the cached second when it is the same.
    #[inline(always)]
    pub(crate) fn put_rfc3339(&mut self, w: &mut Out, ns: u64) {
        let secs = ns / 1_000_000_000;
        let nanos = (ns - secs * 1_000_000_000) as u32;
        if secs != self.second {
            self.set_second(secs);
        }
        let p = &self.prefix;
        let at = |i: usize| -> [u8; 8] { p[i..i + 8].try_into().unwrap_or([0; 8]) };
        w.word(at(0), 8);
        w.word(at(8), 8);
        w.word(at(16), 4);
        // Nine digits of nanoseconds: the first, then eight at once.
        let first = nanos / 100_000_000;
        w.byte(b'0' + first as u8);
        w.word(eight_digits(nanos - first * 100_000_000), 8);
        w.byte(b'Z');
    }

    #[cold]
    fn set_second(&mut self, secs: u64) {
        self.second = secs;
        self.prefix[..20].copy_from_slice(&second_prefix(secs));
    }
}

pub(crate) fn second_prefix(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut buf = *b"0000-00-00T00:00:00.";
    let put = |buf: &mut [u8; 20], at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 0, 4, y as u64);
    put(&mut buf, 5, 2, m as u64);
    put(&mut buf, 8, 2, d as u64);
    put(&mut buf, 11, 2, rem / 3600);
    put(&mut buf, 14, 2, rem % 3600 / 60);
    put(&mut buf, 17, 2, rem % 60);
    buf
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
