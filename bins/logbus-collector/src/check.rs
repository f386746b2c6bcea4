//! `logbus-collector --check`: validate the configuration and print the one
//! that would run, defaults filled in, without touching any ring.
//!
//! Nothing here opens, creates or maps a ring file, binds the metrics
//! address or opens a sink's file: the check can run on a host where the
//! collector is running (before `systemctl reload`) or not yet installed.
//! OTLP endpoints are resolved against the environment exactly as the sink
//! would resolve them, so an unusable `OTEL_EXPORTER_OTLP_*` variable fails
//! the check too.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use logbus_collector::config::{Format, SinkConfig, SinkKind};
use logbus_collector::Config;

/// Where the records would come from, after `--ring`/`--ring-dir`, the
/// file's `[ring]` and the environment.
pub enum Source<'a> {
    /// One ring file.
    Ring(&'a Path),
    /// Every ring of a directory.
    Dir(&'a Path),
}

/// The effective configuration as TOML that `--config` accepts, with a
/// comment line for each value taken from somewhere other than the file.
///
/// # Errors
/// One line naming the sink and the problem, when an OTLP sink's settings
/// cannot be resolved against the environment.
pub fn effective(
    config: &Config,
    source: Source<'_>,
    metrics: Option<&str>,
) -> Result<String, String> {
    let mut out = String::new();
    ring_table(&mut out, config, source, metrics);
    for s in &config.sinks {
        shared_keys(&mut out, s);
        match &s.kind {
            SinkKind::File {
                path,
                max_bytes,
                keep,
                ..
            } => file_keys(&mut out, path, *max_bytes, *keep),
            SinkKind::Otlp { .. } => otlp_keys(&mut out, s)?,
            SinkKind::Stdout { .. } | SinkKind::Null => {}
        }
    }
    Ok(out)
}

/// `[ring]`: where the records come from, the shutdown timeout, and the
/// metrics address as a comment.
fn ring_table(out: &mut String, config: &Config, source: Source<'_>, metrics: Option<&str>) {
    let _ = writeln!(out, "[ring]");
    match source {
        Source::Ring(p) => {
            let _ = writeln!(out, "path = {}", quote(&p.display().to_string()));
        }
        Source::Dir(d) => {
            let _ = writeln!(out, "dir = {}", quote(&d.display().to_string()));
        }
    }
    let _ = writeln!(
        out,
        "shutdown_timeout = {}",
        quote(&duration(config.shutdown_timeout))
    );
    if let Some(addr) = metrics {
        let _ = writeln!(out, "# metrics: http://{addr}/metrics (--metrics)");
    }
}

/// A sink's table header and the keys every sink has (and `format`).
fn shared_keys(out: &mut String, s: &SinkConfig) {
    let _ = writeln!(out, "\n[[sinks]]");
    let _ = writeln!(out, "name = {}", quote(&s.name));
    let _ = writeln!(out, "type = {}", quote(s.kind.type_name()));
    if let Some(f) = s.kind.line_format() {
        let name = match f {
            Format::Json => "json",
            Format::Text => "text",
        };
        let _ = writeln!(out, "format = {}", quote(name));
    }
    let _ = writeln!(
        out,
        "min_level = {}",
        quote(&s.min_level.name().to_ascii_lowercase())
    );
    let _ = writeln!(
        out,
        "max_level = {}",
        quote(&s.max_level.name().to_ascii_lowercase())
    );
    let _ = writeln!(out, "queue = {}", s.queue);
    let _ = writeln!(out, "max_backlog = {}", s.max_backlog);
}

/// A `file` sink's own keys.
fn file_keys(out: &mut String, path: &Path, max_bytes: Option<u64>, keep: u32) {
    let _ = writeln!(out, "path = {}", quote(&path.display().to_string()));
    if path.is_relative() {
        let _ = writeln!(out, "# relative to the collector's working directory");
    }
    match max_bytes {
        Some(m) => {
            let _ = writeln!(out, "max_bytes = {m}");
            let _ = writeln!(out, "keep = {keep}");
        }
        None => {
            let _ = writeln!(
                out,
                "# no max_bytes: never rotated by size (reopened on SIGHUP)"
            );
        }
    }
}

/// An `otlp` sink's own keys, resolved against the environment as the sink
/// would resolve them.
fn otlp_keys(out: &mut String, s: &SinkConfig) -> Result<(), String> {
    let SinkKind::Otlp {
        endpoint,
        protocol,
        timeout,
        batch,
        ..
    } = &s.kind
    else {
        return Ok(());
    };
    let r = logbus_collector::exporter_config(&s.kind)
        .ok_or_else(|| format!("sink \"{}\": not an otlp sink", s.name))?
        .resolve()
        .map_err(|e| format!("sink \"{}\": {e}", s.name))?;
    if endpoint.is_none() || protocol.is_none() || timeout.is_none() {
        let _ = writeln!(
            out,
            "# unset in the file: from OTEL_EXPORTER_OTLP_* in this environment, else the defaults"
        );
    }
    let _ = writeln!(out, "endpoint = {}", quote(&r.endpoint));
    let _ = writeln!(out, "protocol = {}", quote(r.protocol.name()));
    let _ = writeln!(out, "timeout = {}", quote(&duration(r.timeout)));
    let _ = writeln!(out, "batch = {batch}");
    if !r.headers.is_empty() {
        let names: Vec<String> = r.headers.iter().map(|(k, _)| quote(k)).collect();
        let _ = writeln!(out, "# headers (values not shown): {}", names.join(", "));
    }
    Ok(())
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// A duration the configuration accepts back (`10s`, `250ms`, `1.5s`).
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed configuration parses back into the one it was printed from.
    #[test]
    fn the_effective_configuration_reads_back() {
        let text = "[ring]\nshutdown_timeout = \"1500ms\"\n\
            [[sinks]]\nname = \"a b\\\\c\"\ntype = \"stdout\"\nformat = \"text\"\n\
            [[sinks]]\nname = \"f\"\ntype = \"file\"\npath = \"/var/log/x.log\"\nmin_level = \"error\"\nmax_bytes = 10\n\
            [[sinks]]\nname = \"o\"\ntype = \"otlp\"\nendpoint = \"http://h:4317\"\nprotocol = \"grpc\"\ntimeout = \"2s\"\n\
            [[sinks]]\nname = \"n\"\ntype = \"null\"\nqueue = 7\nmax_backlog = 9\n";
        let cfg = logbus_collector::config::parse(text, "c.toml".as_ref()).unwrap();
        let printed = effective(&cfg, Source::Ring(Path::new("/dev/shm/r")), None).unwrap();
        let back = logbus_collector::config::parse(&printed, "p.toml".as_ref()).unwrap();
        assert_eq!(back.sinks, cfg.sinks, "{printed}");
        assert_eq!(back.shutdown_timeout, cfg.shutdown_timeout);
        assert_eq!(back.ring_path.as_deref(), Some(Path::new("/dev/shm/r")));
        assert!(printed.contains("queue = 65536"), "{printed}");
        assert!(printed.contains("max_backlog = 25"), "{printed}");
    }
}
