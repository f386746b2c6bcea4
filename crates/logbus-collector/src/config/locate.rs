//! Where in the file an error is: the line of a key (`sinks[1].path`), and
//! the key at a toml/serde error's position, so that every error names the
//! file, the line and the key.

use std::path::Path;

use super::ConfigError;

/// The 1-based line where `key` (`sinks[1].path`, `ring.dir`, `ring`,
/// `sinks`) is written: the key's own line, else its table's header line;
/// `None` when the file does not write it (a missing key of a table that is
/// not there either, or the file as a whole).
pub(crate) fn key_line(text: &str, key: &str) -> Option<usize> {
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
pub(crate) fn toml_error(text: &str, file: &Path, e: &toml::de::Error) -> ConfigError {
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
