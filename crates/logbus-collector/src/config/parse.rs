//! Reading a configuration: serde reads the file in two passes, then the
//! values are checked against each other.
//!
//! 1. Each sink's `name` and `type`, nothing else.
//! 2. The whole file, each `[[sinks]]` table into its type's table (see
//!    [`sink_table!`](super::table::sink_table), `deny_unknown_fields`).
//!    The type chooses the table through a [`DeserializeSeed`], straight
//!    from the toml deserializer: an internally tagged enum would buffer the
//!    table first, and its errors would lose their position, so their line
//!    and key.
//!
//! A key of another type of sink is reported as such ("applies to file
//! sinks only"), from the tables' own lists of keys.

use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::locate::{key_line, toml_error};
use super::table::{RingTable, SharedTable};
use super::{Config, ConfigError, SinkConfig, SinkKind, DEFAULT_SHUTDOWN_TIMEOUT};
use crate::sink::file::config::{FileOptions, FileTable};
use crate::sink::null::config::{NullOptions, NullTable};
use crate::sink::otlp::config::{OtlpOptions, OtlpTable};
use crate::sink::stdout::config::{StdoutOptions, StdoutTable};

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
    let at = |key: String, problem: String| ConfigError {
        file: file.to_path_buf(),
        line: key_line(text, &key),
        key,
        problem,
    };
    let types = sink_types(text, file, at)?;
    let raw = toml::Deserializer::parse(text)
        .and_then(|d| FileSeed(&types).deserialize(d))
        .map_err(|e| other_types_key(toml_error(text, file, &e), &types))?;
    let (ring_path, ring_dir, shutdown_timeout) =
        ring(raw.ring).map_err(|p| at("ring".into(), p))?;
    if raw.sinks.is_empty() {
        return Err(at(
            "sinks".into(),
            "no sinks: add at least one [[sinks]] table".into(),
        ));
    }
    let mut sinks: Vec<SinkConfig> = Vec::with_capacity(raw.sinks.len());
    for (i, (shared, own)) in raw.sinks.into_iter().enumerate() {
        let sink = sink_config(shared, own, &sinks)
            .map_err(|(leaf, p)| at(format!("sinks[{i}].{leaf}"), p))?;
        sinks.push(sink);
    }
    Ok(Config {
        ring_path,
        ring_dir,
        shutdown_timeout,
        sinks,
    })
}

/// A sink's `type`.
#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum SinkType {
    Stdout,
    File,
    Otlp,
    Null,
}

impl SinkType {
    const ALL: [SinkType; 4] = [
        SinkType::Stdout,
        SinkType::File,
        SinkType::Otlp,
        SinkType::Null,
    ];

    fn name(self) -> &'static str {
        match self {
            SinkType::Stdout => "stdout",
            SinkType::File => "file",
            SinkType::Otlp => "otlp",
            SinkType::Null => "null",
        }
    }

    /// Every key its table accepts.
    fn keys(self) -> &'static [&'static str] {
        match self {
            SinkType::Stdout => StdoutTable::KEYS,
            SinkType::File => FileTable::KEYS,
            SinkType::Otlp => OtlpTable::KEYS,
            SinkType::Null => NullTable::KEYS,
        }
    }
}

/// Pass 1: each sink's name (present?) and type.
fn sink_types(
    text: &str,
    file: &Path,
    at: impl Fn(String, String) -> ConfigError,
) -> Result<Vec<SinkType>, ConfigError> {
    #[derive(Deserialize)]
    struct Outline {
        #[serde(default)]
        sinks: Vec<SinkOutline>,
    }
    #[derive(Deserialize)]
    struct SinkOutline {
        name: Option<IgnoredAny>,
        #[serde(rename = "type")]
        kind: Option<SinkType>,
    }
    let outline: Outline = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let mut types = Vec::with_capacity(outline.sinks.len());
    for (i, s) in outline.sinks.into_iter().enumerate() {
        if s.name.is_none() {
            return Err(at(
                format!("sinks[{i}].name"),
                "missing (every sink needs a unique name)".into(),
            ));
        }
        let t = s.kind.ok_or_else(|| {
            at(
                format!("sinks[{i}].type"),
                "missing (one of stdout, file, otlp, null)".into(),
            )
        })?;
        types.push(t);
    }
    Ok(types)
}

/// A key unknown to its sink's type but known to another's: says which.
fn other_types_key(mut e: ConfigError, types: &[SinkType]) -> ConfigError {
    let Some((sink, leaf)) = e.key.split_once("].") else {
        return e;
    };
    let Some(i) = sink
        .strip_prefix("sinks[")
        .and_then(|i| i.parse::<usize>().ok())
    else {
        return e;
    };
    if types.get(i).is_none() || !e.problem.starts_with("unknown field") {
        return e;
    }
    let owners: Vec<&str> = SinkType::ALL
        .iter()
        .filter(|t| t.keys().contains(&leaf))
        .map(|t| t.name())
        .collect();
    let list = match owners.split_last() {
        None => return e,
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    };
    e.problem = format!("applies to {list} sinks only");
    e
}

/// The `[ring]` table, checked: path, directory, shutdown timeout.
fn ring(
    t: RingTable,
) -> Result<
    (
        Option<std::path::PathBuf>,
        Option<std::path::PathBuf>,
        std::time::Duration,
    ),
    String,
> {
    if t.path.is_some() && t.dir.is_some() {
        return Err("path and dir are exclusive: one ring, or every ring of a directory".into());
    }
    let timeout = t.shutdown_timeout.map_or(DEFAULT_SHUTDOWN_TIMEOUT, |d| d.0);
    Ok((t.path, t.dir, timeout))
}

/// A sink's table checked (its name against the sinks before it): else the
/// key (within the sink's table) and the problem.
fn sink_config(
    shared: SharedTable,
    own: Own,
    before: &[SinkConfig],
) -> Result<SinkConfig, (&'static str, String)> {
    let name = shared.name.clone().unwrap_or_default();
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
        return Err((
            "name",
            format!("{name:?} is not a usable name (non-empty, no quotes or control characters)"),
        ));
    }
    if before.iter().any(|o| o.name == name) {
        return Err(("name", format!("\"{name}\" is used by an earlier sink")));
    }
    let mut sink = SinkConfig::new(&name, own.kind()?);
    shared_options(&shared, &mut sink)?;
    Ok(sink)
}

/// The options every sink has, checked, into `sink`.
fn shared_options(
    shared: &SharedTable,
    sink: &mut SinkConfig,
) -> Result<(), (&'static str, String)> {
    if let Some(l) = shared.min_level {
        sink.min_level = l.0;
    }
    if let Some(l) = shared.max_level {
        sink.max_level = l.0;
    }
    if sink.min_level > sink.max_level {
        return Err((
            "max_level",
            format!(
                "{} is below min_level {}: the sink would get nothing",
                sink.max_level, sink.min_level
            ),
        ));
    }
    if let Some(q) = shared.queue {
        if q == 0 {
            return Err(("queue", "must be at least 1".into()));
        }
        sink.queue = q;
    }
    if let Some(p) = shared.max_backlog {
        if !(1..=100).contains(&p) {
            return Err((
                "max_backlog",
                format!("{p} is not a percentage of the ring from 1 to 100"),
            ));
        }
        sink.max_backlog = p as u8;
    }
    for (key, set) in [
        ("stall_timeout", shared.stall_timeout),
        ("block_timeout", shared.block_timeout),
    ] {
        if set {
            return Err((
                key,
                "no longer used: a sink that cannot write keeps its backlog \
                 (max_backlog in the ring, then queue in memory) and retries"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// A sink type's own keys, as written.
enum Own {
    Stdout(StdoutOptions),
    File(FileOptions),
    Otlp(OtlpOptions),
    Null(NullOptions),
}

impl Own {
    fn kind(self) -> Result<SinkKind, (&'static str, String)> {
        match self {
            Own::Stdout(o) => o.kind(),
            Own::File(o) => o.kind(),
            Own::Otlp(o) => o.kind(),
            Own::Null(o) => o.kind(),
        }
    }
}

/// The file as pass 2 reads it.
struct RawConfig {
    ring: RingTable,
    sinks: Vec<(SharedTable, Own)>,
}

/// The file's top-level keys.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum TopKey {
    Ring,
    Sinks,
}

/// Reads the file, each sink's table by the type pass 1 found.
struct FileSeed<'a>(&'a [SinkType]);

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = RawConfig;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<RawConfig, D::Error> {
        d.deserialize_struct("config", &["ring", "sinks"], self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = RawConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a collector configuration")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawConfig, A::Error> {
        let mut raw = RawConfig {
            ring: RingTable::default(),
            sinks: Vec::new(),
        };
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::Ring => raw.ring = map.next_value()?,
                TopKey::Sinks => raw.sinks = map.next_value_seed(SinksSeed(self.0))?,
            }
        }
        Ok(raw)
    }
}

/// Reads `[[sinks]]`, the `i`th table as the `i`th type.
struct SinksSeed<'a>(&'a [SinkType]);

impl<'de> DeserializeSeed<'de> for SinksSeed<'_> {
    type Value = Vec<(SharedTable, Own)>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SinksSeed<'_> {
    type Value = Vec<(SharedTable, Own)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of sink tables")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut sinks = Vec::with_capacity(self.0.len());
        for &t in self.0 {
            match seq.next_element_seed(SinkSeed(t))? {
                Some(s) => sinks.push(s),
                None => break,
            }
        }
        Ok(sinks)
    }
}

/// Reads one sink's table as its type's.
struct SinkSeed(SinkType);

impl<'de> DeserializeSeed<'de> for SinkSeed {
    type Value = (SharedTable, Own);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(match self.0 {
            SinkType::Stdout => {
                let (s, o) = StdoutTable::deserialize(d)?.into_parts();
                (s, Own::Stdout(o))
            }
            SinkType::File => {
                let (s, o) = FileTable::deserialize(d)?.into_parts();
                (s, Own::File(o))
            }
            SinkType::Otlp => {
                let (s, o) = OtlpTable::deserialize(d)?.into_parts();
                (s, Own::Otlp(o))
            }
            SinkType::Null => {
                let (s, o) = NullTable::deserialize(d)?.into_parts();
                (s, Own::Null(o))
            }
        })
    }
}
