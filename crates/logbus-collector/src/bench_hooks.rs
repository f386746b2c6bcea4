//! The collector's per-record stages, driven one at a time on one thread, for
//! counting instructions per stage (`benches/src/bin/stage_count.rs` under
//! callgrind). Not part of the API: hidden, and may change with the
//! collector's internals.

use std::sync::Arc;

use logbus_ring::{Batch, Consumer, Ring};

use crate::chunk::Chunk;
use crate::config::Format;
use crate::queue::Job;
use crate::resolver::Resolver;
use crate::sink::file::FileSink;
use crate::sink::null::NullSink;
use crate::sink::rotating::RotatingFile;
use crate::sink::{Output, WriteOutcome};

/// A chunk and the line sinks of the collector, run by hand.
pub struct Stages {
    chunk: Option<Arc<Chunk>>,
    resolver: Resolver,
    sinks: Vec<Box<dyn Output>>,
    next_id: u64,
}

/// Which line sink [`Stages::write`] writes with.
#[derive(Clone, Copy, Debug)]
pub enum Dest {
    /// `null` (discards without formatting).
    Null,
    /// A file of JSON lines.
    JsonFile,
    /// A file of text lines.
    TextFile,
}

impl Stages {
    /// Stages over `ring`'s records, with a JSON file at `json` and a text
    /// file at `text` (both appended to).
    ///
    /// # Panics
    /// When a file cannot be opened.
    pub fn new(ring: &Ring, json: &std::path::Path, text: &std::path::Path) -> Stages {
        let open = |p| RotatingFile::open(p, None, 0).expect("open file");
        Stages {
            chunk: Some(Arc::new(Chunk::default())),
            resolver: Resolver::new(ring, 0),
            sinks: vec![
                Box::new(NullSink),
                Box::new(FileSink::new(open(json), Format::Json)),
                Box::new(FileSink::new(open(text), Format::Text)),
            ],
            next_id: 1,
        }
    }

    fn chunk_mut(&mut self) -> &mut Chunk {
        Arc::get_mut(self.chunk.as_mut().expect("chunk")).expect("chunk not shared")
    }

    /// `consumer.poll` into the chunk's batch (what the reader does).
    pub fn poll(&mut self, consumer: &mut Consumer, max: usize) -> usize {
        consumer.poll(&mut self.chunk_mut().batch, max)
    }

    /// The chunk's records.
    pub fn batch(&self) -> &Batch {
        &self.chunk.as_ref().expect("chunk").batch
    }

    /// The reader's resolution of a polled chunk (levels, block ends,
    /// resources); forgets the lines formatted for the last one. The chunk
    /// is handed to two sinks of each format, so [`write`](Self::write)
    /// writes lines formatted once for both ([`lines`](Self::lines)).
    pub fn resolve(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let chunk = Arc::get_mut(self.chunk.as_mut().expect("chunk")).expect("chunk not shared");
        chunk.resolve(id, &mut self.resolver);
        chunk.line_sinks = [2; 2];
    }

    /// The chunk's lines in `format` (formatted on the first call after
    /// [`resolve`](Self::resolve)); returns their bytes.
    pub fn lines(&self, format: Format) -> usize {
        self.chunk.as_ref().expect("chunk").lines(format).buf.len()
    }

    /// Every record of the chunk written by the `dest` sink, as one group.
    ///
    /// # Panics
    /// When the write fails.
    pub fn write(&mut self, dest: Dest) {
        let chunk = self.chunk.clone().expect("chunk");
        let jobs = [Job::new(chunk, 0x3f)];
        let outcome = self.sinks[dest as usize].write(&jobs);
        assert!(
            matches!(outcome, WriteOutcome::Written { .. }),
            "sink write: {outcome:?}"
        );
    }

    /// As [`write`](Self::write), by a sink that is the only one of its
    /// format: it formats the records itself, into its own buffer.
    ///
    /// # Panics
    /// When the write fails.
    pub fn write_alone(&mut self, dest: Dest) {
        let chunk = self.chunk_mut();
        chunk.line_sinks = [1; 2];
        chunk.forget_claims();
        self.write(dest);
        self.chunk_mut().line_sinks = [2; 2];
    }
}
