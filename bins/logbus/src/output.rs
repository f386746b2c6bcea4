//! Writing records to standard output in the shared schema (`logbus-format`),
//! the ones a [`Query`] selects, coloured by level on a terminal.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};

use logbus_ring::{Batch, Level, RecordRef, Ring};

use crate::query::Query;

/// Formats records as JSON lines or text lines through a buffered, locked
/// standard output, resolving each producer's service name once.
pub struct Printer {
    out: BufWriter<StdoutLock<'static>>,
    json: bool,
    colour: bool,
    query: Query,
    /// `-n`: the last lines selected, held back until [`Printer::release`].
    last: Option<(usize, VecDeque<Vec<u8>>)>,
    line: Vec<u8>,
    /// Service names by (resource tag, pid), with the entry's generation
    /// when read (a rewritten entry is read again). Only found names are
    /// kept: an entry still being written is looked up again next time.
    services: HashMap<(u8, u32), (u64, String)>,
}

/// Bound on remembered services, so that a long `tail` does not grow forever.
const MAX_SERVICES: usize = 4096;

/// Whether text output should be coloured: standard output is a terminal
/// and `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn colour_wanted() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Printer {
    /// A printer of JSON (`json`) or text lines (coloured when `colour`)
    /// of the records `query` selects.
    pub fn new(json: bool, colour: bool, query: Query) -> Printer {
        Printer {
            out: BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            json,
            colour: colour && !json,
            query,
            last: None,
            line: Vec::with_capacity(512),
            services: HashMap::new(),
        }
    }

    /// From now on, keep only the last `n` selected lines, until
    /// [`Printer::release`] writes them.
    pub fn keep_last(&mut self, n: usize) {
        self.last = Some((n, VecDeque::with_capacity(n.min(4096))));
    }

    /// Writes the lines kept by [`Printer::keep_last`] and goes back to
    /// writing each line at once.
    pub fn release(&mut self) -> io::Result<()> {
        if let Some((_, lines)) = self.last.take() {
            for l in lines {
                self.out.write_all(&l)?;
            }
        }
        Ok(())
    }

    /// Writes one record, if the query selects it.
    pub fn record(&mut self, ring: &Ring, r: &RecordRef<'_>) -> io::Result<()> {
        if self.query.excludes_owner(ring.owner()) {
            return Ok(());
        }
        // The conditions that need no service name are checked before it is
        // looked up.
        if !self.query.needs_service() && !self.query.matches(r, None) {
            return Ok(());
        }
        let (json, colour) = (self.json, self.colour);
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let service = service_of(&mut self.services, ring, r);
        if self.query.needs_service() && !self.query.matches(r, service) {
            self.line = line;
            return Ok(());
        }
        if json {
            logbus_format::write_json_as(&mut line, r, service, Some(ring.owner()));
        } else {
            logbus_format::write_text(&mut line, r, service);
            if colour {
                paint_level(&mut line, r.level());
            }
        }
        let result = match &mut self.last {
            Some((n, kept)) => {
                if *n > 0 {
                    // The oldest kept line's buffer is reused once N are kept.
                    let mut buf = if kept.len() == *n {
                        kept.pop_front().unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    buf.clear();
                    buf.extend_from_slice(&line);
                    kept.push_back(buf);
                }
                Ok(())
            }
            None => self.out.write_all(&line),
        };
        self.line = line;
        result
    }

    /// Writes every selected record of `batch`, in its order.
    pub fn batch(&mut self, ring: &Ring, batch: &Batch) -> io::Result<()> {
        for r in batch.iter() {
            self.record(ring, &r)?;
        }
        Ok(())
    }

    /// Pushes everything written so far to standard output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The service name `r`'s process registered, if any, remembered in `services`.
fn service_of<'a>(
    services: &'a mut HashMap<(u8, u32), (u64, String)>,
    ring: &Ring,
    r: &RecordRef<'_>,
) -> Option<&'a str> {
    let key = (r.resource(), r.pid());
    let generation = ring.resource_generation(key.0);
    let fresh = services.get(&key).is_some_and(|(g, _)| *g == generation);
    if key.0 != 0 && !fresh {
        services.remove(&key);
        if let Some(res) = ring.resource(key.0, key.1) {
            if services.len() >= MAX_SERVICES {
                services.clear();
            }
            services.insert(key, (generation, res.service));
        }
    }
    services.get(&key).map(|(_, s)| s.as_str())
}

/// The SGR sequence each level's name is shown in (journalctl's choices:
/// errors red and bold, warnings yellow, debug and trace dim).
fn level_colour(level: Level) -> Option<&'static [u8]> {
    match level {
        Level::Trace | Level::Debug => Some(b"\x1b[2m"),
        Level::Info => None,
        Level::Warn => Some(b"\x1b[1;33m"),
        Level::Error => Some(b"\x1b[1;31m"),
        Level::Fatal => Some(b"\x1b[1;37;41m"),
    }
}

/// Colours the level word of a text line (`TIME LEVEL target: ...`).
fn paint_level(line: &mut Vec<u8>, level: Level) {
    let Some(sgr) = level_colour(level) else {
        return;
    };
    let Some(start) = line.iter().position(|&b| b == b' ').map(|p| p + 1) else {
        return;
    };
    let end = line[start..]
        .iter()
        .position(|&b| b == b' ' || b == b'\n')
        .map_or(line.len(), |p| start + p);
    line.splice(end..end, b"\x1b[0m".iter().copied());
    line.splice(start..start, sgr.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_level_word_is_painted() {
        let mut line = b"2024-01-01T00:00:00Z ERROR app: boom\n".to_vec();
        paint_level(&mut line, Level::Error);
        assert_eq!(
            line,
            b"2024-01-01T00:00:00Z \x1b[1;31mERROR\x1b[0m app: boom\n".to_vec()
        );
        let mut line = b"2024-01-01T00:00:00Z INFO  app: fine\n".to_vec();
        paint_level(&mut line, Level::Info);
        assert_eq!(line, b"2024-01-01T00:00:00Z INFO  app: fine\n".to_vec());
    }
}
