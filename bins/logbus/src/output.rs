//! Writing records to standard output in the shared schema (`logbus-format`).

use std::collections::HashMap;
use std::io::{self, BufWriter, StdoutLock, Write};

use logbus_ring::{Batch, RecordRef, Ring};

/// Formats records as JSON lines or text lines through a buffered, locked
/// standard output, resolving each producer's service name once.
pub struct Printer {
    out: BufWriter<StdoutLock<'static>>,
    json: bool,
    line: Vec<u8>,
    /// Service names by (resource tag, pid), with the entry's generation
    /// when read (a rewritten entry is read again). Only found names are
    /// kept: an entry still being written is looked up again next time.
    services: HashMap<(u8, u32), (u64, String)>,
}

/// Bound on remembered services, so that a long `tail` does not grow forever.
const MAX_SERVICES: usize = 4096;

impl Printer {
    /// A printer of JSON (`json`) or text lines.
    pub fn new(json: bool) -> Printer {
        Printer {
            out: BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            json,
            line: Vec::with_capacity(512),
            services: HashMap::new(),
        }
    }

    /// Writes one record.
    pub fn record(&mut self, ring: &Ring, r: &RecordRef<'_>) -> io::Result<()> {
        let key = (r.resource(), r.pid());
        let generation = ring.resource_generation(key.0);
        let fresh = self
            .services
            .get(&key)
            .is_some_and(|(g, _)| *g == generation);
        if key.0 != 0 && !fresh {
            self.services.remove(&key);
            if let Some(res) = ring.resource(key.0, key.1) {
                if self.services.len() >= MAX_SERVICES {
                    self.services.clear();
                }
                self.services.insert(key, (generation, res.service));
            }
        }
        let service = self.services.get(&key).map(|(_, s)| s.as_str());
        self.line.clear();
        if self.json {
            logbus_format::write_json_as(&mut self.line, r, service, Some(ring.owner()));
        } else {
            logbus_format::write_text(&mut self.line, r, service);
        }
        self.out.write_all(&self.line)
    }

    /// Writes every record of `batch`, in its order.
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
