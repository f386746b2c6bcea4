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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logbus_ring::Level;
use serde::Deserialize;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// [`logbus_format::write_json`]: one JSON object per line.
    Json = 0,
    /// [`logbus_format::write_text`]: one readable line.
    Text = 1,
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    ring: RawRing,
    #[serde(default)]
    sinks: Vec<RawSink>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRing {
    path: Option<PathBuf>,
    dir: Option<PathBuf>,
    shutdown_timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<RawKind>,
    format: Option<RawFormat>,
    min_level: Option<Lvl>,
    max_level: Option<Lvl>,
    queue: Option<usize>,
    max_backlog: Option<u64>,
    stall_timeout: Option<Dur>,
    block_timeout: Option<Dur>,
    path: Option<PathBuf>,
    max_bytes: Option<u64>,
    keep: Option<u32>,
    endpoint: Option<String>,
    protocol: Option<RawProtocol>,
    timeout: Option<Dur>,
    headers: Option<BTreeMap<String, String>>,
    batch: Option<usize>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Stdout,
    File,
    Otlp,
    Null,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawFormat {
    Json,
    Text,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawProtocol {
    Grpc,
    Http,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// A level as written in the file.
#[derive(Clone, Copy)]
struct Lvl(Level);

impl<'de> Deserialize<'de> for Lvl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Text(s) => s,
        };
        parse_level(&text)
            .map(Lvl)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a level name or a severity number (which selects its band).
pub fn parse_level(text: &str) -> Result<Level, String> {
    text.parse::<logbus_ring::Severity>()
        .map(|s| s.level())
        .map_err(|e| e.to_string())
}

/// A duration as written in the file.
#[derive(Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
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

/// Reads and validates a configuration file.
///
/// # Errors
/// A [`ConfigError`] naming the file, the key and the problem.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        problem: format!("cannot read: {e}"),
    })?;
    parse(&text, path)
}

/// Parses and validates configuration text; `file` is used in errors only.
///
/// ```
/// let cfg = logbus_collector::config::parse(
///     "[[sinks]]\nname = \"e\"\ntype = \"null\"\nmin_level = \"error\"\n",
///     "c.toml".as_ref(),
/// ).unwrap();
/// assert_eq!(cfg.sinks[0].min_level, logbus_ring::Level::Error);
/// let err = logbus_collector::config::parse("[[sinks]]\nname = \"e\"\ntype = \"nul\"\n", "c.toml".as_ref());
/// assert!(err.unwrap_err().to_string().starts_with("c.toml:3: sinks[0].type: "));
/// ```
///
/// # Errors
/// A [`ConfigError`] naming the file, the key and the problem.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let err = |key: String, problem: String| ConfigError {
        file: file.to_path_buf(),
        line: key_line(text, &key),
        key,
        problem,
    };
    if raw.ring.path.is_some() && raw.ring.dir.is_some() {
        return Err(err(
            "ring".into(),
            "path and dir are exclusive: one ring, or every ring of a directory".into(),
        ));
    }
    let mut cfg = Config {
        ring_path: raw.ring.path,
        ring_dir: raw.ring.dir,
        shutdown_timeout: raw
            .ring
            .shutdown_timeout
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, |d| d.0),
        sinks: Vec::new(),
    };
    if raw.sinks.is_empty() {
        return Err(err(
            "sinks".into(),
            "no sinks: add at least one [[sinks]] table".into(),
        ));
    }
    for (i, s) in raw.sinks.into_iter().enumerate() {
        let k = |name: &str| format!("sinks[{i}].{name}");
        let name = s
            .name
            .ok_or_else(|| err(k("name"), "missing (every sink needs a unique name)".into()))?;
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
            return Err(err(
                k("name"),
                format!(
                    "{name:?} is not a usable name (non-empty, no quotes or control characters)"
                ),
            ));
        }
        if cfg.sinks.iter().any(|o: &SinkConfig| o.name == name) {
            return Err(err(
                k("name"),
                format!("\"{name}\" is used by an earlier sink"),
            ));
        }
        let kind = s.kind.ok_or_else(|| {
            err(
                k("type"),
                "missing (one of stdout, file, otlp, null)".into(),
            )
        })?;
        let only = |present: bool, key: &str, kinds: &str| {
            if present {
                Err(err(k(key), format!("applies to {kinds} sinks only")))
            } else {
                Ok(())
            }
        };
        let format = match s.format {
            Some(RawFormat::Text) => Format::Text,
            _ => Format::Json,
        };
        if matches!(kind, RawKind::Otlp | RawKind::Null) {
            only(s.format.is_some(), "format", "stdout and file")?;
        }
        if kind != RawKind::File {
            only(s.path.is_some(), "path", "file")?;
            only(s.max_bytes.is_some(), "max_bytes", "file")?;
            only(s.keep.is_some(), "keep", "file")?;
        }
        if kind != RawKind::Otlp {
            only(s.endpoint.is_some(), "endpoint", "otlp")?;
            only(s.protocol.is_some(), "protocol", "otlp")?;
            only(s.timeout.is_some(), "timeout", "otlp")?;
            only(s.headers.is_some(), "headers", "otlp")?;
            only(s.batch.is_some(), "batch", "otlp")?;
        }
        let kind = match kind {
            RawKind::Stdout => SinkKind::Stdout { format },
            RawKind::Null => SinkKind::Null,
            RawKind::File => {
                let path = s
                    .path
                    .ok_or_else(|| err(k("path"), "missing (file sinks need a path)".into()))?;
                if path.as_os_str().is_empty() {
                    return Err(err(k("path"), "is empty".into()));
                }
                if s.max_bytes == Some(0) {
                    return Err(err(k("max_bytes"), "must be at least 1".into()));
                }
                if s.keep.is_some() && s.max_bytes.is_none() {
                    return Err(err(
                        k("keep"),
                        "needs max_bytes (rotation is by size)".into(),
                    ));
                }
                SinkKind::File {
                    path,
                    format,
                    max_bytes: s.max_bytes,
                    keep: s.keep.unwrap_or(5),
                }
            }
            RawKind::Otlp => {
                if let Some(e) = &s.endpoint {
                    if !(e.starts_with("http://") || e.starts_with("https://")) {
                        return Err(err(
                            k("endpoint"),
                            format!("\"{e}\" is not an http:// or https:// URL"),
                        ));
                    }
                }
                if s.batch == Some(0) {
                    return Err(err(k("batch"), "must be at least 1".into()));
                }
                SinkKind::Otlp {
                    endpoint: s.endpoint,
                    protocol: s.protocol.map(|p| match p {
                        RawProtocol::Grpc => OtlpProtocol::Grpc,
                        RawProtocol::Http | RawProtocol::HttpProtobuf => OtlpProtocol::Http,
                    }),
                    timeout: s.timeout.map(|d| d.0),
                    headers: s.headers.unwrap_or_default().into_iter().collect(),
                    batch: s.batch.unwrap_or(DEFAULT_OTLP_BATCH),
                }
            }
        };
        let mut sink = SinkConfig::new(&name, kind);
        if let Some(l) = s.min_level {
            sink.min_level = l.0;
        }
        if let Some(l) = s.max_level {
            sink.max_level = l.0;
        }
        if sink.min_level > sink.max_level {
            return Err(err(
                k("max_level"),
                format!(
                    "{} is below min_level {}: the sink would get nothing",
                    sink.max_level, sink.min_level
                ),
            ));
        }
        if let Some(q) = s.queue {
            if q == 0 {
                return Err(err(k("queue"), "must be at least 1".into()));
            }
            sink.queue = q;
        }
        if let Some(p) = s.max_backlog {
            if !(1..=100).contains(&p) {
                return Err(err(
                    k("max_backlog"),
                    format!("{p} is not a percentage of the ring from 1 to 100"),
                ));
            }
            sink.max_backlog = p as u8;
        }
        for (key, set) in [
            ("stall_timeout", s.stall_timeout.is_some()),
            ("block_timeout", s.block_timeout.is_some()),
        ] {
            if set {
                return Err(err(
                    k(key),
                    "no longer used: a sink that cannot write keeps its backlog \
                     (max_backlog in the ring, then queue in memory) and retries"
                        .into(),
                ));
            }
        }
        cfg.sinks.push(sink);
    }
    Ok(cfg)
}

/// The 1-based line where `key` (`sinks[1].path`, `ring.dir`, `ring`,
/// `sinks`) is written: the key's own line, else its table's header line;
/// `None` when the file does not write it (a missing key of a table that is
/// not there either, or the file as a whole).
fn key_line(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = match key.split_once('.') {
        Some((t, k)) => (t, Some(k)),
        None => (key, None),
    };
    let mut current = String::new();
    let mut sinks_seen = 0usize;
    let mut header = None;
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            current = if h.trim() == "sinks" {
                sinks_seen += 1;
                format!("sinks[{}]", sinks_seen - 1)
            } else {
                h.trim().to_string()
            };
            if current == table || (table == "sinks" && h.trim() == "sinks") {
                header.get_or_insert(i + 1);
            }
            continue;
        }
        if let Some(h) = l.strip_prefix('[').and_then(|h| h.split(']').next()) {
            current = h.trim().to_string();
            if current == table {
                header.get_or_insert(i + 1);
            }
            continue;
        }
        let here = l.split_once('=').map(|(k, _)| k.trim().trim_matches('"'));
        if current == table && leaf.is_some() && here == leaf {
            return Some(i + 1);
        }
    }
    header
}

/// Turns a toml/serde error into one line naming the key, found from the
/// error's position in the text (the key on that line, under the last table
/// header before it).
fn toml_error(text: &str, file: &Path, e: &toml::de::Error) -> ConfigError {
    let problem = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: String::new(),
            problem,
        };
    };
    let at = span.start.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |p| at + p);
    let line = &text[line_start..line_end];
    // The table the line is in: the last header above it.
    let mut table = String::new();
    let mut sinks_seen = 0usize;
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            let h = h.trim();
            if h == "sinks" {
                table = format!("sinks[{sinks_seen}]");
                sinks_seen += 1;
            } else {
                table = h.to_string();
            }
        } else if let Some(h) = l.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = h.trim().to_string();
        }
    }
    let key_here = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let key = match (table.is_empty(), key_here) {
        (_, None) => table,
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
    };
    ConfigError {
        file: file.to_path_buf(),
        line: Some(line_no),
        key,
        problem,
    }
}

#[cfg(test)]
mod tests {
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
