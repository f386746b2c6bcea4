//! The command line grammar (clap derive) and the parsers of its values.
//!
//! Everything a person types is checked here, so that a bad level, id, field or
//! mode is a usage error (exit 2) before any ring is touched.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use logbus_ring::{Severity, TraceParent};

use crate::query::{OutputFormat, QueryArgs};

/// Create, write, inspect and drain a logbus shared-memory ring.
///
/// RING is the ring file; when left out it is $LOGBUS_RING, else /dev/shm/logbus.
#[derive(Parser, Debug)]
#[command(name = "logbus", version = logbus_ring::layout::version_line(env!("CARGO_PKG_VERSION")))]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new ring (an existing file is an error).
    Create(CreateArgs),
    /// Write one record, or one record per line of standard input.
    #[command(override_usage = "logbus emit [OPTIONS] [RING] [MESSAGE]...")]
    Emit(EmitArgs),
    /// Print the unread records without consuming them, oldest first.
    Dump(DumpArgs),
    /// Consume the unread records: print them, then mark them delivered.
    Drain(ReadArgs),
    /// Print the ring's geometry, counters and reader.
    Stat(ReadArgs),
    /// Follow new records without consuming them, until interrupted.
    Tail(TailArgs),
    /// Print a shell completion script (e.g. `logbus completions bash >
    /// /etc/bash_completion.d/logbus`).
    Completions(CompletionsArgs),
    /// Write the man pages (logbus.1 and one per subcommand) into a directory.
    Man(ManArgs),
    /// Watch the bus live: rings, sinks and the busiest producers, each second.
    Top(TopArgs),
}

/// `logbus completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `logbus man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "target/man")]
    pub dir: PathBuf,
}

/// `logbus top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// The ring file [default: $LOGBUS_RING, else /dev/shm/logbus].
    #[arg(conflicts_with = "ring_dir")]
    pub ring: Option<PathBuf>,
    /// Watch every ring of this directory (as `logbus-collector --ring-dir`).
    #[arg(long, value_name = "DIR")]
    pub ring_dir: Option<PathBuf>,
    /// Print one screen of text, measured over one interval, and exit.
    #[arg(long)]
    pub once: bool,
    /// JSON instead of the screen: one object per interval (one with --once).
    #[arg(long)]
    pub json: bool,
    /// Milliseconds between refreshes; rates are per second over this interval.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub interval_ms: u64,
}

/// `logbus create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The ring file [default: $LOGBUS_RING, else /dev/shm/logbus].
    pub ring: Option<PathBuf>,
    /// Bytes of record data (K, M, G suffixes: powers of 1024). Every writer
    /// may use all of it, up to its level's share.
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_size)]
    pub size: u64,
    /// Bytes per block, a power of two from 4K to 16M: the unit a writer
    /// claims (one at a time) and the largest record. The ring has size /
    /// block-size blocks; at most that many threads hold one at once.
    #[arg(long, value_name = "BYTES", default_value = "32K", value_parser = parse_size)]
    pub block_size: u64,
    /// Lossless mode: a producer that finds the ring full waits up to this
    /// many ms for the collector to free room before the overflow policy
    /// applies (0: producers never wait).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub wait_ms: u32,
    /// File mode, in octal.
    #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = parse_mode)]
    pub mode: u32,
    /// Records at or above this level evict older, lower ones when the ring is full.
    #[arg(long, value_name = "LEVEL", default_value = "warn", value_parser = parse_level)]
    pub protect: u8,
}

/// `16M` → 16777216: a byte count with an optional K, M or G (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 1u64 << 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 1 << 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (a number, optionally with K, M or G)"))
}

/// `logbus emit`.
#[derive(Args, Debug)]
pub struct EmitArgs {
    /// Severity: trace, debug, info, warn, error, fatal (any case) or 1-24.
    #[arg(short, long, value_name = "LEVEL", default_value = "info", value_parser = parse_level)]
    pub level: u8,
    /// The target (logger name) of the records.
    #[arg(short, long, default_value = "", hide_default_value = true)]
    pub target: String,
    /// Trace id: 32 hex digits, not all zero.
    #[arg(long, value_name = "HEX32", value_parser = parse_hex::<16>)]
    pub trace_id: Option<[u8; 16]>,
    /// Span id: 16 hex digits, not all zero.
    #[arg(long, value_name = "HEX16", value_parser = parse_hex::<8>)]
    pub span_id: Option<[u8; 8]>,
    /// W3C traceparent (00-TRACEID-SPANID-FLAGS): sets trace id, span id and trace flags.
    #[arg(long, value_name = "VALUE", value_parser = parse_traceparent,
          conflicts_with_all = ["trace_id", "span_id"])]
    pub traceparent: Option<TraceParent>,
    /// A structured field, repeatable. `KEY=VALUE` stores VALUE as an integer,
    /// a float or a boolean when it is written as one (`5`, `-3`, `1.5`, `2e3`,
    /// `true`, `false`; no leading zeros, so `007` stays text), else as text.
    /// `KEY:=VALUE` always stores text.
    #[arg(short, long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
    pub fields: Vec<FieldArg>,
    /// Register the writing process under this service name (shown as `service`).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// With standard input: skip empty lines instead of writing empty records.
    #[arg(long)]
    pub skip_empty: bool,
    /// [RING] [MESSAGE]...: the first word is the ring when it contains a `/`
    /// and no space (write `./name` for a ring in this directory); the other
    /// words, joined with spaces, are the message. With no message, every line
    /// of standard input is written as a record as soon as it arrives.
    #[arg(value_name = "MESSAGE")]
    pub words: Vec<String>,
}

impl EmitArgs {
    /// Splits the positional words into the ring (if the first looks like a
    /// path) and the message words.
    pub fn ring_and_message(&self) -> (Option<PathBuf>, &[String]) {
        match self.words.split_first() {
            Some((first, rest)) if looks_like_path(first) => (Some(PathBuf::from(first)), rest),
            _ => (None, &self.words),
        }
    }
}

fn looks_like_path(word: &str) -> bool {
    word.contains('/') && !word.chars().any(char::is_whitespace)
}

/// `logbus dump`, `drain` and `stat`.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// The ring file [default: $LOGBUS_RING, else /dev/shm/logbus].
    pub ring: Option<PathBuf>,
    /// One JSON object per line (per run, for `stat`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `logbus dump`.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The ring file and output format.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Which records to print.
    #[command(flatten)]
    pub query: QueryArgs,
}

/// `logbus tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// The ring file and output format.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Print the records already unread first, then follow.
    #[arg(long)]
    pub unread: bool,
    /// Which records to print.
    #[command(flatten)]
    pub query: QueryArgs,
}

/// Whether records go out as JSON lines: `--json` or `-o json`.
pub fn wants_json(read: &ReadArgs, query: &QueryArgs) -> bool {
    read.json || query.output == Some(OutputFormat::Json)
}

/// A `--field` as typed, with its inferred type.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldArg {
    /// The key.
    pub key: String,
    /// The value.
    pub value: FieldValue,
}

/// An owned field value (the ring's `Value` borrows).
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// Text.
    Str(String),
    /// An integer that fits `i64`.
    I64(i64),
    /// A non-negative integer too large for `i64`.
    U64(u64),
    /// A decimal fraction or exponent form.
    F64(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl FieldArg {
    /// The ring's borrowed form.
    pub fn as_field(&self) -> logbus_ring::Field<'_> {
        use logbus_ring::Value;
        logbus_ring::Field {
            key: &self.key,
            value: match &self.value {
                FieldValue::Str(s) => Value::Str(s),
                FieldValue::I64(v) => Value::I64(*v),
                FieldValue::U64(v) => Value::U64(*v),
                FieldValue::F64(v) => Value::F64(*v),
                FieldValue::Bool(v) => Value::Bool(*v),
            },
        }
    }
}

/// Parses a level name or severity number into the severity number.
pub fn parse_level(s: &str) -> Result<u8, String> {
    s.parse::<Severity>()
        .map(|sev| sev.0)
        .map_err(|e| e.to_string())
}

/// Parses an octal file mode (`640`, `0640`, `0o640`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "`{s}` is not an octal file mode such as 600 or 0640"
        )),
    }
}

/// Parses exactly `2 * N` hex digits into `N` bytes, refusing all zeros (an
/// invalid id in W3C trace context).
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("`{s}` is not {} hex digits", 2 * N));
    }
    let nibble = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0]) << 4 | nibble(pair[1]);
    }
    if out.iter().all(|&b| b == 0) {
        return Err(format!("`{s}` is all zeros, which is not a valid id"));
    }
    Ok(out)
}

/// `--traceparent`: the W3C rule, as every front end reads it
/// ([`TraceParent::parse`]).
pub fn parse_traceparent(s: &str) -> Result<TraceParent, String> {
    TraceParent::parse(s).ok_or_else(|| {
        format!("`{s}` is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, lowercase, ids not all zero)")
    })
}

/// Parses `KEY=VALUE` (typed when it looks like a number or boolean) or
/// `KEY:=VALUE` (always text).
pub fn parse_field(s: &str) -> Result<FieldArg, String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!(
            "`{s}` is not a field: write KEY=VALUE or KEY:=VALUE"
        ));
    };
    let (key, forced_text) = match key.strip_suffix(':') {
        Some(k) => (k, true),
        None => (key, false),
    };
    if key.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    if key.len() > 255 {
        return Err(format!("field key `{key}` is longer than 255 bytes"));
    }
    let value = if forced_text {
        FieldValue::Str(value.to_string())
    } else {
        infer(value)
    };
    Ok(FieldArg {
        key: key.to_string(),
        value,
    })
}

/// The type a value is written in: integers and decimals in their plain
/// canonical spelling (no `+`, no leading zeros, no `inf`/`NaN`), booleans in
/// lower case; anything else is text.
fn infer(v: &str) -> FieldValue {
    match v {
        "true" => return FieldValue::Bool(true),
        "false" => return FieldValue::Bool(false),
        _ => {}
    }
    let b = v.as_bytes();
    let unsigned = b.strip_prefix(b"-").unwrap_or(b);
    // Integer part: `0` or a non-zero digit followed by digits.
    let int_len = unsigned.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && unsigned[0] == b'0') {
        return FieldValue::Str(v.to_string());
    }
    let mut rest = &unsigned[int_len..];
    if rest.is_empty() {
        if let Ok(i) = v.parse::<i64>() {
            return FieldValue::I64(i);
        }
        if let Ok(u) = v.parse::<u64>() {
            return FieldValue::U64(u);
        }
        return FieldValue::Str(v.to_string());
    }
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return FieldValue::Str(v.to_string());
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"-")
            .or_else(|| exp.strip_prefix(b"+"))
            .unwrap_or(exp);
        if exp.is_empty() || !exp.iter().all(u8::is_ascii_digit) {
            return FieldValue::Str(v.to_string());
        }
        rest = &[];
    }
    match v.parse::<f64>() {
        Ok(f) if rest.is_empty() && f.is_finite() => FieldValue::F64(f),
        _ => FieldValue::Str(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> FieldValue {
        parse_field(s).unwrap().value
    }

    #[test]
    fn field_values_are_typed_only_when_written_as_numbers_or_booleans() {
        assert_eq!(value("n=5"), FieldValue::I64(5));
        assert_eq!(value("n=-3"), FieldValue::I64(-3));
        assert_eq!(value("n=0"), FieldValue::I64(0));
        assert_eq!(value("n=18446744073709551615"), FieldValue::U64(u64::MAX));
        assert_eq!(value("n=1.5"), FieldValue::F64(1.5));
        assert_eq!(value("n=-2e3"), FieldValue::F64(-2000.0));
        assert_eq!(value("n=0.25E-1"), FieldValue::F64(0.025));
        assert_eq!(value("ok=true"), FieldValue::Bool(true));
        assert_eq!(value("ok=false"), FieldValue::Bool(false));
        for text in [
            "007",
            "+5",
            "1.",
            ".5",
            "1e",
            "inf",
            "NaN",
            "True",
            "5 ",
            "",
            "1.2.3",
            "0x10",
            "99999999999999999999999",
            "1e999",
        ] {
            assert_eq!(
                value(&format!("k={text}")),
                FieldValue::Str(text.into()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn colon_equals_forces_text_and_keys_are_checked() {
        let f = parse_field("zip:=01234").unwrap();
        assert_eq!(
            (f.key.as_str(), f.value),
            ("zip", FieldValue::Str("01234".into()))
        );
        let f = parse_field("n:=5").unwrap();
        assert_eq!(f.value, FieldValue::Str("5".into()));
        assert_eq!(
            parse_field("eq=a=b").unwrap().value,
            FieldValue::Str("a=b".into())
        );
        assert!(parse_field("novalue").is_err());
        assert!(parse_field("=5").is_err());
        assert!(parse_field(":=5").is_err());
        assert!(parse_field(&format!("{}=1", "k".repeat(256))).is_err());
    }

    #[test]
    fn hex_ids_need_exact_length_and_a_non_zero_value() {
        assert_eq!(parse_hex::<2>("0aFf"), Ok([0x0a, 0xff]));
        assert!(parse_hex::<2>("0aF").is_err());
        assert!(parse_hex::<2>("0aFff").is_err());
        assert!(parse_hex::<2>("0g00").is_err());
        assert!(parse_hex::<2>("0000").is_err());
    }

    #[test]
    fn traceparent_takes_the_w3c_rule_and_says_what_it_wants() {
        // The rule itself is tested once, in logbus_ring::TraceParent.
        let tp =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!((tp.trace_id[0], tp.span_id[7], tp.flags), (0x4b, 0xb7, 1));
        let e =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7").unwrap_err();
        assert!(e.contains("is not a W3C traceparent"), "{e}");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        for bad in ["", "0o", "8", "rw-", "17777"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_word_is_the_ring_only_when_it_looks_like_a_path() {
        let args = |words: &[&str]| EmitArgs {
            level: 9,
            target: String::new(),
            trace_id: None,
            span_id: None,
            traceparent: None,
            fields: vec![],
            service: None,
            skip_empty: false,
            words: words.iter().map(|w| w.to_string()).collect(),
        };
        let a = args(&["/dev/shm/r", "hello", "world"]);
        assert_eq!(a.ring_and_message().0, Some(PathBuf::from("/dev/shm/r")));
        assert_eq!(a.ring_and_message().1, ["hello", "world"]);
        let a = args(&["hello", "world"]);
        assert_eq!(a.ring_and_message().0, None);
        let a = args(&["disk /var is full"]);
        assert_eq!(a.ring_and_message().0, None);
        let a = args(&["./ring"]);
        assert_eq!(
            a.ring_and_message(),
            (Some(PathBuf::from("./ring")), &[][..])
        );
    }

    #[test]
    fn the_grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
