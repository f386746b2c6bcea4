//! Which records `dump` and `tail` print: journalctl's query habits.
//!
//! The flags (`-p`, `--target`, `--service`, `--pid`, `--uid`, `-g`,
//! `--since`, `--until`, `--trace-id`) are parsed here into a [`Query`] that
//! is checked against each record while it is read, before it is formatted,
//! so a query that selects little costs little. Every value is checked by
//! its parser, so a bad level, pattern or time is a usage error (exit 2)
//! before any ring is opened. A query that selects nothing prints nothing
//! and is not an error.

use clap::{Args, ValueEnum};
use logbus_ring::{Level, RecordRef};
use regex::Regex;

use crate::cli::parse_hex;

/// The query flags of `dump` and `tail`.
#[derive(Args, Debug, Default)]
pub struct QueryArgs {
    /// Only records at this level and above (trace, debug, info, warn, error,
    /// fatal, a severity 1-24, or journalctl's notice, err, crit, alert, emerg).
    #[arg(short = 'p', long = "level", value_name = "LEVEL", value_parser = parse_min_level)]
    pub level: Option<Level>,
    /// Only records whose target matches this glob (`*` any run of
    /// characters, `?` one character), e.g. `app::*`.
    #[arg(long, value_name = "GLOB")]
    pub target: Option<String>,
    /// Only records of processes registered under this service name.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Only records written by this process id.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Only records of rings owned by this user id (a record's `uid` is its
    /// ring's owner).
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Only records whose message matches this regular expression (case
    /// insensitive when the pattern has no upper-case letter, as journalctl).
    #[arg(short = 'g', long, value_name = "REGEX", value_parser = parse_grep)]
    pub grep: Option<Regex>,
    /// Only records written at or after this time: an age (`30s`, `10m`,
    /// `1h`, `2d`: that long ago) or an RFC 3339 time (`2024-05-01T12:00:00Z`).
    #[arg(long, value_name = "WHEN", value_parser = parse_when, allow_hyphen_values = true)]
    pub since: Option<u64>,
    /// Only records written at or before this time (as `--since`).
    #[arg(long, value_name = "WHEN", value_parser = parse_when, allow_hyphen_values = true)]
    pub until: Option<u64>,
    /// Only the last N of the selected records (`tail`: of the unread ones,
    /// printed before it follows).
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Output format (`--json` is the same as `-o json`).
    #[arg(short = 'o', long, value_name = "FORMAT", conflicts_with = "json")]
    pub output: Option<OutputFormat>,
    /// Every record of one trace (32 hex digits), from every process writing
    /// the ring, in time order.
    #[arg(long, value_name = "HEX32", value_parser = parse_hex::<16>)]
    pub trace_id: Option<[u8; 16]>,
}

/// `-o`: how records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One readable line per record (coloured by level on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// A compiled query: every condition set must hold.
#[derive(Debug, Default)]
pub struct Query {
    min_level: Option<Level>,
    target: Option<String>,
    service: Option<String>,
    pid: Option<u32>,
    uid: Option<u32>,
    grep: Option<Regex>,
    since_ns: Option<u64>,
    until_ns: Option<u64>,
    trace_id: Option<[u8; 16]>,
}

impl Query {
    /// The query the flags describe.
    pub fn new(args: &QueryArgs) -> Query {
        Query {
            min_level: args.level,
            target: args.target.clone(),
            service: args.service.clone(),
            pid: args.pid,
            uid: args.uid,
            grep: args.grep.clone(),
            since_ns: args.since,
            until_ns: args.until,
            trace_id: args.trace_id,
        }
    }

    /// Whether every record of a ring owned by `owner` fails the query (so
    /// that the ring need not be read at all).
    pub fn excludes_owner(&self, owner: u32) -> bool {
        self.uid.is_some_and(|u| u != owner)
    }

    /// Whether [`Query::matches`] looks at the service name (so that the
    /// caller resolves it first).
    pub fn needs_service(&self) -> bool {
        self.service.is_some()
    }

    /// Whether `r`, written by a process registered as `service`, is selected.
    /// The cheap conditions go first.
    pub fn matches(&self, r: &RecordRef<'_>, service: Option<&str>) -> bool {
        if self.min_level.is_some_and(|l| r.level() < l)
            || self.pid.is_some_and(|p| r.pid() != p)
            || self.since_ns.is_some_and(|t| r.time_ns() < t)
            || self.until_ns.is_some_and(|t| r.time_ns() > t)
        {
            return false;
        }
        if let Some(id) = &self.trace_id {
            if r.trace_id().as_ref() != Some(id) {
                return false;
            }
        }
        if let Some(want) = &self.service {
            if service != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(glob) = &self.target {
            if !glob_match(glob.as_bytes(), r.target().as_bytes()) {
                return false;
            }
        }
        if let Some(re) = &self.grep {
            if !re.is_match(r.message()) {
                return false;
            }
        }
        true
    }
}

/// `-p`: a level name or severity (its level band), with journalctl's
/// syslog names mapped onto the nearest level.
pub fn parse_min_level(s: &str) -> Result<Level, String> {
    let alias = match s.to_ascii_lowercase().as_str() {
        "notice" => Some(Level::Info),
        "err" => Some(Level::Error),
        "crit" | "alert" | "emerg" => Some(Level::Fatal),
        _ => None,
    };
    match alias {
        Some(l) => Ok(l),
        None => s
            .parse::<logbus_ring::Severity>()
            .map(|sev| sev.level())
            .map_err(|e| e.to_string()),
    }
}

/// `-g`: a regular expression, case insensitive when it has no upper-case
/// letter.
fn parse_grep(s: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(s)
        .case_insensitive(!s.chars().any(char::is_uppercase))
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let last = text.lines().last().unwrap_or("invalid").trim().to_string();
            format!("`{s}` is not a regular expression ({last})")
        })
}

/// `--since`/`--until`: `now`, an age (`10m` is ten minutes ago; a leading
/// `-` is allowed) or an RFC 3339 time, as nanoseconds since the Unix epoch.
pub fn parse_when(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{s}` is not a time: write an age such as 30s, 10m, 1h, 2d, or an RFC 3339 time such as 2024-05-01T12:00:00Z")
    };
    let t = s.trim();
    let now = logbus_ring::now_ns();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(ns) = parse_rfc3339(t) {
        return Ok(ns);
    }
    let age = t.strip_prefix('-').unwrap_or(t);
    let ago = if let Some(days) = age.strip_suffix('d') {
        days.parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400_000_000_000))
            .ok_or_else(bad)?
    } else {
        let d = logbus_collector::config::parse_duration(age).map_err(|_| bad())?;
        u64::try_from(d.as_nanos()).map_err(|_| bad())?
    };
    Ok(now.saturating_sub(ago))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (a space or `t` may stand for
/// the `T`) as nanoseconds since the Unix epoch; `None` when it is not one,
/// or is before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Option<i64> {
        let digits = b.get(at..at + len)?;
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |v, d| v * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return None;
        }
        nanos *= 10i64.pow(9u32.saturating_sub(n as u32));
    }
    let offset_secs = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |x: u8, y: u8| -> Option<i64> {
                (x.is_ascii_digit() && y.is_ascii_digit())
                    .then(|| i64::from(x - b'0') * 10 + i64::from(y - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos as u64)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm, the inverse of the one `logbus-format` prints times with).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `text` matches `glob`: `*` matches any run of bytes (also empty),
/// `?` exactly one, everything else itself. Linear backtracking on the last
/// `*` only, so no pattern can make it slow.
pub fn glob_match(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match(b"app::*", b"app::db"));
        assert!(glob_match(b"app::*", b"app::"));
        assert!(!glob_match(b"app::*", b"ap::db"));
        assert!(glob_match(b"*db*", b"app::db::pool"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"ac"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"x"));
        assert!(glob_match(b"a*b*c", b"a-b-b-c"));
        assert!(!glob_match(b"a*b*c", b"a-b-b-"));
        assert!(glob_match(b"exact", b"exact"));
        assert!(!glob_match(b"exact", b"exactly"));
    }

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500_000_000)
        );
        // The same instant written in two zones.
        assert_eq!(
            parse_rfc3339("2024-05-01T14:30:00+02:00"),
            parse_rfc3339("2024-05-01T12:30:00Z")
        );
        assert_eq!(
            parse_rfc3339("2024-05-01 07:30:00.123456789-05:00"),
            parse_rfc3339("2024-05-01T12:30:00.123456789Z")
        );
        // Digits past nanoseconds are dropped, not rounded.
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01.0000000019Z"),
            Some(1_000_000_001)
        );
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "1969-12-31T23:59:59Z",
            "10m",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_count_back_from_now() {
        let before = logbus_ring::now_ns();
        let t = parse_when("10m").unwrap();
        let after = logbus_ring::now_ns();
        assert!(t >= before - 600_000_000_000 && t <= after - 600_000_000_000);
        let d = parse_when("-2d").unwrap();
        let later = logbus_ring::now_ns();
        assert!(d >= after - 2 * 86_400_000_000_000 && d <= later - 2 * 86_400_000_000_000);
        assert!(parse_when("now").unwrap() >= after);
        for bad in ["10", "ten minutes", "yesterday", "1w", "5x"] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels_accept_journalctl_names() {
        assert_eq!(parse_min_level("err"), Ok(Level::Error));
        assert_eq!(parse_min_level("WARNING"), Ok(Level::Warn));
        assert_eq!(parse_min_level("emerg"), Ok(Level::Fatal));
        assert_eq!(parse_min_level("notice"), Ok(Level::Info));
        assert_eq!(parse_min_level("18"), Ok(Level::Error));
        assert!(parse_min_level("loud").is_err());
    }

    #[test]
    fn grep_is_smart_case() {
        let re = parse_grep("slow").unwrap();
        assert!(re.is_match("SLOW query"));
        let re = parse_grep("Slow").unwrap();
        assert!(!re.is_match("SLOW query"));
        assert!(re.is_match("Slow query"));
        assert!(parse_grep("(").is_err());
    }
}
