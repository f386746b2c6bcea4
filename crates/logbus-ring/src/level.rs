//! Severity: the OpenTelemetry severity number (1-24) and the six level names.
//!
//! Every record carries the severity number as its producer gave it, so Python,
//! `log`, syslog and OpenTelemetry levels all map without loss. Counters and the
//! overflow policy work per *level*, the six bands of four numbers each.

use std::fmt;
use std::str::FromStr;

/// One of the six severity bands of OpenTelemetry (TRACE = 1-4 ... FATAL = 21-24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// Severity 1-4.
    Trace = 0,
    /// Severity 5-8.
    Debug = 1,
    /// Severity 9-12.
    Info = 2,
    /// Severity 13-16.
    Warn = 3,
    /// Severity 17-20.
    Error = 4,
    /// Severity 21-24.
    Fatal = 5,
}

/// How many levels there are; counter arrays are indexed by `Level as usize`.
pub const LEVELS: usize = 6;

/// Per severity byte: the severity clamped to 1-24 and the index of its
/// level. A table: the emit path looks both up once per record, and the
/// comparisons of a clamp cost more than a load.
const BY_SEVERITY: [(u8, u8); 256] = {
    let mut t = [(0u8, 0u8); 256];
    let mut b = 0;
    while b < 256 {
        let s = if b < 1 {
            1
        } else if b > 24 {
            24
        } else {
            b as u8
        };
        t[b] = (s, (s - 1) / 4);
        b += 1;
    }
    t
};

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; LEVELS] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The level of a severity number, or `None` outside 1-24.
    ///
    /// ```
    /// use logbus_ring::Level;
    /// assert_eq!(Level::from_severity(9), Some(Level::Info));
    /// assert_eq!(Level::from_severity(0), None);
    /// ```
    pub fn from_severity(severity: u8) -> Option<Level> {
        match severity {
            1..=24 => Some(Level::ALL[Level::index(severity)]),
            _ => None,
        }
    }

    /// The counter index (`Level as usize`) of a severity, clamped to 1-24:
    /// the one severity-to-level rule every counter and the policy use.
    #[inline]
    pub(crate) const fn index(severity: u8) -> usize {
        BY_SEVERITY[severity as usize].1 as usize
    }

    /// A severity clamped to 1-24 (what a record stores of its producer's).
    #[inline]
    pub(crate) const fn clamp(severity: u8) -> u8 {
        BY_SEVERITY[severity as usize].0
    }

    /// The first (canonical) severity number of this level: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21.
    pub const fn severity(self) -> u8 {
        self as u8 * 4 + 1
    }

    /// The upper-case name used in the record schema (`INFO`, `WARN`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A level or severity given by a person: `trace`, `debug`, `info`, `warn`/`warning`,
/// `error`, `fatal`/`critical` in any case, or a number 1-24.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Severity(pub u8);

/// The text was neither a level name nor a number 1-24.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSeverityError(pub String);

impl fmt::Display for ParseSeverityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a level (trace, debug, info, warn, error, fatal or a number 1-24)",
            self.0
        )
    }
}

impl std::error::Error for ParseSeverityError {}

impl FromStr for Severity {
    type Err = ParseSeverityError;

    /// ```
    /// use logbus_ring::Severity;
    /// assert_eq!("Warning".parse::<Severity>().unwrap().0, 13);
    /// assert_eq!("18".parse::<Severity>().unwrap().0, 18);
    /// assert!("25".parse::<Severity>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let level = match s.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            "fatal" | "critical" => Level::Fatal,
            _ => {
                return match s.parse::<u8>() {
                    Ok(n @ 1..=24) => Ok(Severity(n)),
                    _ => Err(ParseSeverityError(s.to_string())),
                }
            }
        };
        Ok(Severity(level.severity()))
    }
}

impl Severity {
    /// The level band of this severity.
    pub fn level(self) -> Level {
        Level::from_severity(self.0).unwrap_or(Level::Info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_severity_maps_to_its_band() {
        for s in 1..=24u8 {
            let l = Level::from_severity(s).unwrap();
            assert!(l.severity() <= s && s < l.severity() + 4, "{s} -> {l}");
        }
        assert_eq!(Level::from_severity(25), None);
    }

    /// The table agrees with the rule it replaced (`clamp(1, 24)`, then
    /// bands of four) for every byte a producer may pass.
    #[test]
    fn every_byte_clamps_to_1_24_and_its_band() {
        for b in 0..=255u8 {
            let s = b.clamp(1, 24);
            assert_eq!(Level::clamp(b), s, "{b}");
            assert_eq!(Level::index(b), ((s - 1) / 4) as usize, "{b}");
        }
    }

    #[test]
    fn names_parse_in_any_case() {
        for (text, sev) in [
            ("TRACE", 1),
            ("debug", 5),
            ("Info", 9),
            ("warn", 13),
            ("WARNING", 13),
            ("error", 17),
            ("critical", 21),
            ("Fatal", 21),
            ("24", 24),
        ] {
            assert_eq!(text.parse::<Severity>().unwrap().0, sev, "{text}");
        }
        for bad in ["", "0", "25", "loud", "-1"] {
            assert!(bad.parse::<Severity>().is_err(), "{bad}");
        }
    }
}
