//! The collector's TOML configuration: parsing, defaults and validation.
//!
//! ```toml
//! [ring]
//! path = "/dev/shm/logbus"     # optional; --ring wins
//! # dir = "/dev/shm/logbus.d"  # or: every ring of this directory, each owned by
//!                              # the user who writes it (--ring-dir wins)
//! shutdown_timeout = "10s"     # bound on the final flush at SIGTERM/SIGINT
//!
//! [[sinks]]
//! name = "console"             # unique
//! type = "stdout"              # stdout | file | otlp | null
//! format = "json"              # json | text (stdout and file; default json)
//! min_level = "info"           # optional; default: everything
//! max_level = "fatal"          # optional
//! queue = 65536                # records kept in memory only for this sink
//!                              # (past max_backlog); beyond that the oldest,
//!                              # lowest levels are shed
//! max_backlog = 25             # percent of the ring's blocks this sink's
//!                              # unwritten records may keep (they survive a
//!                              # collector crash); beyond, they wait in memory
//!
//! [[sinks]]
//! name = "errors"
//! type = "file"
//! path = "errors.log"          # relative to the collector's working directory; another
//!                              # user's symlink, FIFO or file there is refused (SECURITY.md)
//! max_bytes = 104857600        # optional size-based rotation
//! keep = 5                     # rotated files kept (errors.log.1 .. .5)
//!
//! [[sinks]]
//! name = "otel"
//! type = "otlp"
//! endpoint = "http://127.0.0.1:4317"  # optional: OTEL_EXPORTER_OTLP_* env, then default
//! protocol = "grpc"            # grpc | http
//! timeout = "10s"              # optional export timeout
//! headers = { "x-token" = "t" } # optional
//! batch = 512                  # records per export request
//! ```
//!
//! Levels are names (`trace` ... `fatal`, `warning`, `critical`) or severity
//! numbers 1-24; a number selects its whole level band. Durations are a number
//! with a unit: `250ms`, `5s`, `2m`, `1h`.
//!
//! Every error is one line naming the file, the key and the problem, e.g.
//! `collector.toml:7: sinks[0].min_level: "loud" is not a level (...)`.
//!
//! Here: the validated types. `parse.rs`: reading and checking a file (by
//! serde, each sink's table by its `type`); `table.rs`: the tables' shapes
//! as written (each sink type's own keys live with the sink, in
//! `sink/*/config.rs`); `locate.rs`: the line and key of an error.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use logbus_ring::Level;
use serde::Deserialize;

mod locate;
mod parse;
pub(crate) mod table;

pub use parse::{load, parse};

/// Default bound on the final flush.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default records kept in memory per sink.
pub const DEFAULT_QUEUE: usize = 65536;
/// Default share of the ring (percent of its blocks) a sink's backlog keeps.
pub const DEFAULT_MAX_BACKLOG: u8 = 25;
/// Default records per OTLP export request.
pub const DEFAULT_OTLP_BATCH: usize = 512;

/// A validated collector configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The ring to drain, if the file names one (`--ring` wins over it).
    pub ring_path: Option<PathBuf>,
    /// The directory whose rings to drain, if the file names one
    /// (`--ring-dir` wins over it); exclusive with `ring_path`.
    pub ring_dir: Option<PathBuf>,
    /// Bound on the final flush at shutdown.
    pub shutdown_timeout: Duration,
    /// The sinks, in file order; names are unique.
    pub sinks: Vec<SinkConfig>,
}

impl Default for Config {
    /// No file: one `stdout` sink writing every record as JSON.
    fn default() -> Self {
        Config {
            ring_path: None,
            ring_dir: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            sinks: vec![SinkConfig::new(
                "stdout",
                SinkKind::Stdout {
                    format: Format::Json,
                },
            )],
        }
    }
}

/// How a byte-oriented sink writes records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// [`logbus_format::write_json`]: one JSON object per line.
    Json = 0,
    /// [`logbus_format::write_text`]: one readable line.
    Text = 1,
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http` or `http/protobuf`).
    #[serde(alias = "http/protobuf")]
    Http,
}

/// What a sink writes to.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkKind {
    /// Standard output.
    Stdout {
        /// Line format.
        format: Format,
    },
    /// A file, appended to, optionally rotated by size.
    File {
        /// The file.
        path: PathBuf,
        /// Line format.
        format: Format,
        /// Rotate before the file would grow past this many bytes.
        max_bytes: Option<u64>,
        /// Rotated files kept (`path.1` newest).
        keep: u32,
    },
    /// An OpenTelemetry endpoint.
    Otlp {
        /// Endpoint URL; `None`: the `OTEL_EXPORTER_OTLP_*` environment, then the default.
        endpoint: Option<String>,
        /// Transport; `None`: the environment, then gRPC.
        protocol: Option<OtlpProtocol>,
        /// Export timeout; `None`: the environment, then 10 s.
        timeout: Option<Duration>,
        /// Extra request headers.
        headers: Vec<(String, String)>,
        /// Records per export request.
        batch: usize,
    },
    /// Resolves and formats (JSON), then discards: for benchmarks.
    Null,
}

impl SinkKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Stdout { .. } => "stdout",
            SinkKind::File { .. } => "file",
            SinkKind::Otlp { .. } => "otlp",
            SinkKind::Null => "null",
        }
    }

    /// The format of its lines, for the sinks that write lines.
    pub fn line_format(&self) -> Option<Format> {
        match self {
            SinkKind::Stdout { format } | SinkKind::File { format, .. } => Some(*format),
            SinkKind::Otlp { .. } | SinkKind::Null => None,
        }
    }
}

/// One sink's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkConfig {
    /// Unique name (counters and messages use it).
    pub name: String,
    /// Where records go.
    pub kind: SinkKind,
    /// Lowest level passed on.
    pub min_level: Level,
    /// Highest level passed on.
    pub max_level: Level,
    /// Records kept in memory only for this sink, past its `max_backlog` in
    /// the ring (beyond: shed, lowest levels first).
    pub queue: usize,
    /// Percent of the ring's blocks this sink's unwritten records may keep
    /// from being reused (1-100; default 25).
    pub max_backlog: u8,
}

impl SinkConfig {
    /// A sink passing every level, with default queue and timeouts.
    pub fn new(name: &str, kind: SinkKind) -> SinkConfig {
        SinkConfig {
            name: name.to_string(),
            kind,
            min_level: Level::Trace,
            max_level: Level::Fatal,
            queue: DEFAULT_QUEUE,
            max_backlog: DEFAULT_MAX_BACKLOG,
        }
    }

    /// The levels passed on, as a bit mask (bit `Level as usize`).
    pub fn level_mask(&self) -> u8 {
        Level::ALL
            .iter()
            .filter(|l| **l >= self.min_level && **l <= self.max_level)
            .fold(0, |m, l| m | 1 << *l as u8)
    }
}

/// A configuration that cannot be used. `Display` is one line:
/// `FILE[:LINE]: KEY: PROBLEM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key, e.g. `sinks[1].min_level` (empty when the file as a whole is wrong).
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a level name or a severity number (which selects its band).
pub fn parse_level(text: &str) -> Result<Level, String> {
    text.parse::<logbus_ring::Severity>()
        .map(|s| s.level())
        .map_err(|e| e.to_string())
}

/// Parses `250ms`, `5s`, `1.5s`, `2m`, `1h`.
///
/// ```
/// use std::time::Duration;
/// use logbus_collector::config::parse_duration;
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "\"{text}\" is not a duration (a number and a unit: ms, s, m or h)"
            ))
        }
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale < 1e12 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "\"{text}\" is not a duration (a number and a unit: ms, s, m or h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("c.toml")).unwrap_err().to_string()
    }

    #[test]
    fn full_example_parses() {
        let cfg = parse(
            r#"
[ring]
path = "/dev/shm/x"
shutdown_timeout = "3s"

[[sinks]]
name = "console"
type = "stdout"
format = "json"
min_level = "info"
max_level = "fatal"
queue = 100

[[sinks]]
name = "errors"
type = "file"
path = "errors.log"
format = "text"
min_level = "error"
max_bytes = 1000
keep = 2

[[sinks]]
name = "otel"
type = "otlp"
endpoint = "http://127.0.0.1:4317"
protocol = "grpc"
headers = { "x-a" = "b" }
"#,
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(cfg.ring_path, Some(PathBuf::from("/dev/shm/x")));
        assert_eq!(cfg.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(cfg.sinks.len(), 3);
        assert_eq!(cfg.sinks[0].level_mask(), 0b111100);
        assert_eq!(cfg.sinks[0].queue, 100);
        assert_eq!(
            cfg.sinks[1].kind,
            SinkKind::File {
                path: "errors.log".into(),
                format: Format::Text,
                max_bytes: Some(1000),
                keep: 2
            }
        );
        assert_eq!(cfg.sinks[1].level_mask(), 0b110000);
        match &cfg.sinks[2].kind {
            SinkKind::Otlp {
                headers, protocol, ..
            } => {
                assert_eq!(headers, &vec![("x-a".to_string(), "b".to_string())]);
                assert_eq!(*protocol, Some(OtlpProtocol::Grpc));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        assert_eq!(
            err("[[sinks]]\nname = \"a\"\ntype = \"null\"\nmin_level = \"loud\"\n"),
            "c.toml:4: sinks[0].min_level: `loud` is not a level (trace, debug, info, warn, error, fatal or a number 1-24)"
        );
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"null\"\n\n[[sinks]]\nname = \"b\"\ntype = \"stdout\"\nqueue = \"big\"\n");
        assert!(e.starts_with("c.toml:8: sinks[1].queue: "), "{e}");
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"null\"\ncolour = \"red\"\n");
        assert!(
            e.starts_with("c.toml:4: sinks[0].colour: unknown field `colour`"),
            "{e}"
        );
        let e =
            err("[ring]\nshutdown_timeout = \"soon\"\n[[sinks]]\nname = \"a\"\ntype = \"null\"\n");
        assert!(e.starts_with("c.toml:2: ring.shutdown_timeout: "), "{e}");
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"file\"\n");
        // A missing key: its table's line.
        assert_eq!(
            e,
            "c.toml:1: sinks[0].path: missing (file sinks need a path)"
        );
        let e = err(
            "[[sinks]]\nname = \"a\"\ntype = \"null\"\n[[sinks]]\nname = \"a\"\ntype = \"null\"\n",
        );
        assert_eq!(
            e,
            "c.toml:5: sinks[1].name: \"a\" is used by an earlier sink"
        );
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"stdout\"\nmax_bytes = 3\n");
        assert_eq!(
            e,
            "c.toml:4: sinks[0].max_bytes: applies to file sinks only"
        );
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"null\"\nmin_level = \"error\"\nmax_level = \"info\"\n");
        assert!(e.starts_with("c.toml:5: sinks[0].max_level: "), "{e}");
        let e =
            err("[ring]\npath = \"/a\"\ndir = \"/b\"\n[[sinks]]\nname = \"a\"\ntype = \"null\"\n");
        assert!(e.starts_with("c.toml:1: ring: "), "{e}");
        let e = err("[[sinks]\n");
        assert!(e.starts_with("c.toml:1"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(err("").contains("no sinks"));
    }

    /// Each sink type's table takes its own keys and the shared ones only: a
    /// key of another type says which types take it; any other unknown key
    /// is an error too; either names the line and the key.
    #[test]
    fn a_key_of_another_sink_type_says_which_types_take_it() {
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"null\"\n\nformat = \"text\"\n");
        assert_eq!(
            e,
            "c.toml:5: sinks[0].format: applies to stdout and file sinks only"
        );
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"file\"\npath = \"x\"\nbatch = 3\n");
        assert_eq!(e, "c.toml:5: sinks[0].batch: applies to otlp sinks only");
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"otlp\"\nqueue = 1\nmax_size = 3\n");
        assert!(
            e.starts_with("c.toml:5: sinks[0].max_size: unknown field `max_size`"),
            "{e}"
        );
        let e = err("[ring]\nsize = 3\n[[sinks]]\nname = \"a\"\ntype = \"null\"\n");
        assert!(e.starts_with("c.toml:2: ring.size: unknown field"), "{e}");
        let e = err("colour = 1\n[[sinks]]\nname = \"a\"\ntype = \"null\"\n");
        assert!(e.starts_with("c.toml:1: colour: unknown field"), "{e}");
        let e = err("[[sinks]]\ntype = \"null\"\n");
        assert_eq!(
            e,
            "c.toml:1: sinks[0].name: missing (every sink needs a unique name)"
        );
        let e = err("[[sinks]]\nname = \"a\"\n");
        assert_eq!(
            e,
            "c.toml:1: sinks[0].type: missing (one of stdout, file, otlp, null)"
        );
        let e = err("[[sinks]]\nname = \"a\"\ntype = \"file\"\npath = \"x\"\nkeep = 2\n");
        assert_eq!(
            e,
            "c.toml:5: sinks[0].keep: needs max_bytes (rotation is by size)"
        );
    }

    #[test]
    fn numbers_select_their_band() {
        assert_eq!(parse_level("18"), Ok(Level::Error));
        assert_eq!(parse_level("WARNING"), Ok(Level::Warn));
        let cfg = parse(
            "[[sinks]]\nname = \"a\"\ntype = \"null\"\nmin_level = 10\nmax_level = 14\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(cfg.sinks[0].level_mask(), 0b001100);
    }
}
