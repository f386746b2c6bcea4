//! What both forms share per record: the [`Formatter`] (the cached second
//! and the strings last found clean), a [`Service`] name checked once, the
//! upper bound of a record's bytes, and the level of a severity.

use logbus_ring::RecordRef;

use crate::escape::{any_word, str_needs_escape, word_has_control};
use crate::{json, text};

/// An upper bound of the bytes `write_json` or `write_text` appends for `r`:
/// every string byte may become a 6-byte `\u00XX`, every field adds at most
/// 32 bytes of punctuation and number, and the fixed parts take under 400.
#[inline(always)]
pub(crate) fn json_bound(r: &RecordRef<'_>, service: Option<&str>) -> usize {
    400 + 6 * (r.payload_len() + service.map_or(0, str::len)) + 40 * r.field_count()
}

/// Formats records as [`write_json`](crate::write_json) and
/// [`write_text`](crate::write_text) do, keeping the
/// `YYYY-MM-DDTHH:MM:SS.` text of the last second it formatted: records of a
/// batch are nearly all in the same second. One per formatting loop (the
/// collector makes one per chunk and format); the free functions keep theirs
/// per thread.
#[derive(Clone, Copy, Debug)]
pub struct Formatter {
    /// The second whose text `prefix` holds (`u64::MAX`: none yet).
    pub(crate) second: u64,
    /// The second's text, padded to 24 bytes (3 words).
    pub(crate) prefix: [u8; 24],
    /// The last target and first field keys found to need no escaping:
    /// the same target and keys come back record after record.
    clean: [Clean; CLEAN_ENTRIES],
}

/// Entries of [`Formatter::clean`]: the target, then the first field keys.
pub(crate) const CLEAN_ENTRIES: usize = 4;

/// A string of at most 16 bytes known to need no escaping in JSON (so no
/// control character either), by content: its length and [`short_words`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clean {
    len: u8,
    words: [u64; 2],
}

impl Clean {
    /// Matches no string (lengths are at most 16).
    const NONE: Clean = Clean {
        len: u8::MAX,
        words: [0; 2],
    };
}

/// The bytes of a string of at most 16 bytes in two words, losslessly given
/// its length: 8 to 16 bytes as the first and the last 8 (overlapping), 4
/// to 7 as the first and last 4, 1 to 3 as the first, middle and last byte.
#[inline(always)]
pub(crate) fn short_words(b: &[u8]) -> [u64; 2] {
    let n = b.len();
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    if n >= 8 {
        [u64_at(0), u64_at(n - 8)]
    } else if n >= 4 {
        [u32_at(0) as u64 | (u32_at(n - 4) as u64) << 32, 0]
    } else if n > 0 {
        [
            b[0] as u64 | (b[n / 2] as u64) << 8 | (b[n - 1] as u64) << 16,
            0,
        ]
    } else {
        [0; 2]
    }
}

impl Formatter {
    /// Whether `s` is the clean string last seen in entry `at`, else whether it
    /// is clean (remembered if it is short).
    #[inline(always)]
    pub(crate) fn is_clean(&mut self, at: usize, s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() > 16 || at >= CLEAN_ENTRIES {
            return !str_needs_escape(b);
        }
        let words = short_words(b);
        let c = &mut self.clean[at];
        if c.len as usize == b.len() && c.words == words {
            return true;
        }
        let clean = !str_needs_escape(b);
        if clean {
            *c = Clean {
                len: b.len() as u8,
                words,
            };
        }
        clean
    }
}

impl Default for Formatter {
    fn default() -> Formatter {
        Formatter::new()
    }
}

impl Formatter {
    /// A formatter with nothing cached.
    pub const fn new() -> Formatter {
        Formatter {
            second: u64::MAX,
            prefix: [0; 24],
            clean: [Clean::NONE; CLEAN_ENTRIES],
        }
    }

    /// Appends `r` as one JSON object and a newline (as [`write_json_as`](crate::write_json_as):
    /// with `"uid"` when `uid` is given).
    #[inline]
    pub fn json(
        &mut self,
        out: &mut Vec<u8>,
        r: &RecordRef<'_>,
        service: Option<&Service<'_>>,
        uid: Option<u32>,
    ) {
        json::record(self, out, r, service.map(Service::checked), uid)
    }

    /// Appends `r` as one readable line and a newline (as [`write_text`](crate::write_text)).
    #[inline]
    pub fn text(&mut self, out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&Service<'_>>) {
        text::record(self, out, r, service.map(Service::checked))
    }
}

/// A service name checked once for bytes to escape, for the many records of
/// one producer (see [`Formatter::json`]).
#[derive(Clone, Copy, Debug)]
pub struct Service<'a> {
    name: &'a str,
    /// No byte needs escaping in JSON.
    json_clean: bool,
    /// No control character (the text form).
    text_clean: bool,
}

impl<'a> Service<'a> {
    /// `name`, checked.
    pub fn new(name: &'a str) -> Service<'a> {
        Service {
            name,
            json_clean: !str_needs_escape(name.as_bytes()),
            text_clean: !any_word(name.as_bytes(), word_has_control),
        }
    }

    #[inline(always)]
    pub(crate) fn checked(&self) -> Checked<'a> {
        Checked {
            name: self.name,
            json_clean: Some(self.json_clean),
            text_clean: Some(self.text_clean),
        }
    }
}

/// A service name as the formatting functions get it: what is known of it.
#[derive(Clone, Copy)]
pub(crate) struct Checked<'a> {
    pub(crate) name: &'a str,
    pub(crate) json_clean: Option<bool>,
    pub(crate) text_clean: Option<bool>,
}

impl<'a> Checked<'a> {
    #[inline(always)]
    pub(crate) fn unchecked(name: &'a str) -> Checked<'a> {
        Checked {
            name,
            json_clean: None,
            text_clean: None,
        }
    }
}

/// The service a record carries itself (its producer found no room in the
/// ring's resource table; see `logbus_ring::carried_service`). Cold: records
/// whose resource is known never get here.
#[cold]
pub(crate) fn carried<'a>(r: &RecordRef<'a>) -> Option<Checked<'a>> {
    logbus_ring::carried_service(r).map(Checked::unchecked)
}

/// The table index of a severity (1-24; validated, clamped all the same).
#[inline(always)]
pub(crate) fn severity_index(severity: u8) -> usize {
    (severity.clamp(1, 24) - 1) as usize
}

/// The level names of severities 1-4, 5-8, ... 21-24 (OpenTelemetry's bands,
/// as `logbus_ring::Level::from_severity`).
pub(crate) const LEVEL_NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
