//! Chunks: one polled [`Batch`] plus what the reader resolved about it, shared
//! immutably (behind an `Arc`) by every sink queue.
//!
//! The reader owns a chunk until it wraps it in an `Arc`; after every sink is
//! done with it and its records are committed, the reader takes it back
//! (`Arc::try_unwrap`) and reuses its buffers, so a steady-state collector
//! allocates one `Arc` per chunk and nothing per record.
//!
//! A chunk is small and bounded: at most `CHUNK_RECORDS` records and
//! `CHUNK_BYTES` of record bodies plus one block (see the reader,
//! `collector/reader.rs`), so that what the collector holds is a number of
//! chunks: a [`ChunkGauge`] counts those alive.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use logbus_format::{Formatter, Service};
use logbus_ring::{Batch, RecordRef, Resource, LEVELS};

use crate::config::Format;
use crate::resolver::Resolver;

/// A chunk's records formatted as lines, once per format for all the sinks
/// that write that format: line `i` is `buf[ends[i - 1]..ends[i]]`.
#[derive(Default)]
pub struct Lines {
    /// Every record's line, in batch order.
    pub buf: Vec<u8>,
    /// Where each line ends in `buf`.
    pub ends: Vec<u32>,
}

impl Lines {
    /// Line `i` (with its newline).
    #[inline]
    pub fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }

    /// Lines `from..` as one slice.
    #[inline]
    pub fn from(&self, from: usize) -> &[u8] {
        let start = if from == 0 {
            0
        } else {
            self.ends[from - 1] as usize
        };
        &self.buf[start..]
    }
}

/// A line format and the [`Formatter`] of one formatting loop (which caches
/// the current second's text and strings found clean from line to line).
pub(crate) struct LineFormatter {
    /// The format of the lines.
    pub format: Format,
    formatter: Formatter,
}

impl LineFormatter {
    pub(crate) fn new(format: Format) -> LineFormatter {
        LineFormatter {
            format,
            formatter: Formatter::new(),
        }
    }
}

/// A producer process as its resource entry describes it.
#[derive(Debug)]
pub struct Origin {
    /// Unique for the collector's lifetime (cache key for sinks).
    pub id: u64,
    /// The owner (uid) of the ring it wrote to, from the ring file.
    pub uid: u32,
    /// The resource entry as read.
    pub resource: Resource,
}

impl Origin {
    /// `service.name`, when the producer gave one.
    pub fn service(&self) -> Option<&str> {
        (!self.resource.service.is_empty()).then_some(self.resource.service.as_str())
    }
}

/// How many chunks are alive (made by the reader and not yet dropped), and
/// the most that were at once: what the collector's memory is made of.
#[derive(Debug, Default)]
pub struct ChunkGauge {
    alive: AtomicUsize,
    most: AtomicUsize,
}

impl ChunkGauge {
    /// Chunks alive now.
    pub fn alive(&self) -> usize {
        // Relaxed: a statistic; the reader alone adds, any thread drops.
        self.alive.load(Ordering::Relaxed)
    }

    /// The most chunks alive at once so far.
    pub fn most(&self) -> usize {
        // Relaxed: as in `alive`.
        self.most.load(Ordering::Relaxed)
    }
}

/// A chunk counted in its [`ChunkGauge`] for as long as it lives.
pub(crate) struct Counted(Arc<ChunkGauge>);

impl Counted {
    pub(crate) fn new(gauge: Arc<ChunkGauge>) -> Counted {
        // Relaxed (both): statistics; `most` is exact since only the reader
        // adds (drops, on any thread, only lower `alive`).
        let n = gauge.alive.fetch_add(1, Ordering::Relaxed) + 1;
        gauge.most.fetch_max(n, Ordering::Relaxed);
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // Relaxed: as in `new`.
        self.0.alive.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One polled batch and its resolution.
#[derive(Default)]
pub struct Chunk {
    /// Increasing in poll order; sinks and commits are ordered by it.
    pub id: u64,
    /// The ring it was read from: a key unique for the collector's lifetime.
    pub source: u32,
    /// That ring's owner: the uid whose processes wrote these records.
    pub uid: u32,
    /// The records.
    pub batch: Batch,
    /// Per record: 0 (no known resource) or 1 + index into `origins`.
    pub origin_of: Vec<u16>,
    /// The distinct producers of this chunk's records.
    pub origins: Vec<Arc<Origin>>,
    /// Records per level.
    pub counts: [u32; LEVELS],
    /// The end of its last record: what to commit once every sink is done.
    pub end: u64,
    /// Per block its records come from (in batch order): the position after
    /// its last record here, what a sink marks in the ring once it is done.
    pub block_ends: Vec<logbus_ring::BlockPos>,
    /// When the reader polled it (ns since the Unix epoch): the observed time.
    pub polled_ns: u64,
    /// Line sinks given this chunk, per [`Format`] (set by the reader as it
    /// hands the chunk out). A format with one sink is formatted by that
    /// sink alone, a piece at a time into its own buffer
    /// ([`Chunk::format_lines`]); with several, once for all of them
    /// ([`Chunk::lines`]).
    pub line_sinks: [u8; 2],
    /// Per format: formatting it was taken on, by the reader (ahead of the
    /// sinks, while it has nothing to read) or by a sink alone with it. See
    /// [`Chunk::claim_formatting`].
    pub(crate) claimed: [AtomicBool; 2],
    /// The records as JSON and as text lines, made by the first sink that
    /// needs them (see [`Chunk::lines`]).
    pub(crate) formatted: [OnceLock<Lines>; 2],
    /// The buffers of an earlier use of this chunk, for `formatted` to reuse.
    pub(crate) spare: [Mutex<Option<Lines>>; 2],
    /// Its place in the collector's [`ChunkGauge`] (`None`: not counted, as
    /// in tests and bench hooks). Never read: held for its `Drop`.
    #[allow(dead_code)]
    pub(crate) counted: Option<Counted>,
}

impl Chunk {
    /// Bytes of the records it holds (their bodies): its size in the
    /// queues' accounting of released records ([`crate::queue`]). Its
    /// memory is a small multiple of it (the records' headers, their lines).
    pub fn bytes(&self) -> usize {
        self.batch.bytes()
    }

    /// The producer of record `i`, if known.
    pub fn origin(&self, i: usize) -> Option<&Arc<Origin>> {
        match self.origin_of.get(i) {
            Some(&k) if k > 0 => self.origins.get(k as usize - 1),
            _ => None,
        }
    }

    /// The records whose level is in `mask`, with their index.
    pub fn selected(&self, mask: u8) -> impl Iterator<Item = (usize, RecordRef<'_>)> + '_ {
        self.batch
            .iter()
            .enumerate()
            .filter(move |(_, r)| mask & (1 << r.level() as u8) != 0)
    }

    /// Whether a format's lines are made once for several sinks
    /// ([`Chunk::lines`]) rather than by one sink alone
    /// ([`Chunk::format_lines`]).
    pub fn shares_lines(&self, format: Format) -> bool {
        self.line_sinks[format as usize] > 1
    }

    /// Takes on formatting the chunk's `format` lines; false when the reader
    /// or a sink took it on first. A sink alone with its format that wins
    /// formats the records it takes itself, into its own buffer; one that
    /// loses writes [`Chunk::lines`] (which waits for them if the reader is
    /// still making them). So a chunk's lines are made once, and in
    /// parallel with the sink's writing of earlier chunks whenever the
    /// reader has time.
    pub fn claim_formatting(&self, format: Format) -> bool {
        // Relaxed: the flag only decides who formats; the lines themselves
        // are published by `formatted`'s `OnceLock`.
        !self.claimed[format as usize].swap(true, Ordering::Relaxed)
    }

    /// Forgets who took on formatting (for [`crate::bench_hooks`], which
    /// formats one chunk again and again).
    pub(crate) fn forget_claims(&mut self) {
        for c in &mut self.claimed {
            *c.get_mut() = false;
        }
    }

    /// Whether formatting `format` was taken on (by [`claim_formatting`] or
    /// [`lines`], so also whenever the lines exist): a look that, unlike a
    /// claim, writes nothing.
    ///
    /// [`claim_formatting`]: Chunk::claim_formatting
    /// [`lines`]: Chunk::lines
    pub(crate) fn formatting_claimed(&self, format: Format) -> bool {
        // Relaxed: as in `claim_formatting`.
        self.claimed[format as usize].load(Ordering::Relaxed)
    }

    /// The records formatted as `format` lines: made once, by the first sink
    /// that asks (others wait for it, then share it).
    pub fn lines(&self, format: Format) -> &Lines {
        let k = format as usize;
        // Relaxed: as in `claim_formatting`; tells the reader not to wait
        // here for lines it would have made ahead.
        self.claimed[k].store(true, Ordering::Relaxed);
        self.formatted[k].get_or_init(|| {
            let mut lines = self.spare[k]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            lines.buf.clear();
            lines.ends.clear();
            lines.buf.reserve(self.batch.len() * 192);
            lines.ends.reserve(self.batch.len());
            // One formatter for the chunk: the time prefix is made once per
            // second of records, not per record.
            let mut f = LineFormatter::new(format);
            let ends = Some(&mut lines.ends);
            self.format_lines(&mut f, 0, &mut lines.buf, usize::MAX, ends, |_, _| true);
            lines
        })
    }

    /// Appends, from record `from` on, the lines in `format` of the records
    /// `want(index, level)` selects to `out`, until `out` holds `limit` bytes
    /// or more; returns the first record not looked at. With `ends`, pushes
    /// where each line ends. Each producer's service name is checked for
    /// bytes to escape once per call, not per record.
    pub(crate) fn format_lines(
        &self,
        f: &mut LineFormatter,
        from: usize,
        out: &mut Vec<u8>,
        limit: usize,
        mut ends: Option<&mut Vec<u32>>,
        want: impl Fn(usize, u8) -> bool,
    ) -> usize {
        let services: Vec<Option<Service<'_>>> = self
            .origins
            .iter()
            .map(|o| o.service().map(Service::new))
            .collect();
        let mut i = from;
        while let Some(r) = self.batch.get(i) {
            if out.len() >= limit {
                break;
            }
            if want(i, r.level() as u8) {
                let service = match self.origin_of.get(i) {
                    Some(&k) if k > 0 => services.get(k as usize - 1).and_then(Option::as_ref),
                    _ => None,
                };
                match f.format {
                    Format::Json => f.formatter.json(out, &r, service, Some(self.uid)),
                    Format::Text => f.formatter.text(out, &r, service),
                }
                if let Some(ends) = ends.as_mut() {
                    ends.push(out.len() as u32);
                }
            }
            i += 1;
        }
        i
    }

    /// Fills the derived fields from `batch` (already polled).
    pub(crate) fn resolve(&mut self, id: u64, resolver: &mut Resolver) {
        self.source = resolver.source();
        self.uid = resolver.owner();
        self.forget_claims();
        for k in 0..2 {
            // Keep the buffers of the last use (no allocation per chunk).
            if let Some(old) = self.formatted[k].take() {
                *self.spare[k].get_mut().unwrap_or_else(|p| p.into_inner()) = Some(old);
            }
        }
        self.id = id;
        self.polled_ns = logbus_ring::now_ns();
        self.origin_of.clear();
        self.origins.clear();
        self.counts = [0; LEVELS];
        self.end = 0;
        self.block_ends.clear();
        let mut last_key = None;
        let mut last_idx = 0u16;
        for r in self.batch.iter() {
            self.counts[r.level() as usize] += 1;
            self.end = self.end.max(r.end());
            let pos = r.pos();
            match self.block_ends.last_mut() {
                Some(last) if last.seq == pos.seq => last.end = last.end.max(pos.end),
                _ => self.block_ends.push(pos),
            }
            let key = (r.resource(), r.pid());
            if last_key != Some(key) {
                last_key = Some(key);
                last_idx = match resolver.lookup(key.0, key.1) {
                    None => 0,
                    Some(o) => match self.origins.iter().position(|x| Arc::ptr_eq(x, &o)) {
                        Some(p) => p as u16 + 1,
                        None if self.origins.len() < u16::MAX as usize - 1 => {
                            self.origins.push(o);
                            self.origins.len() as u16
                        }
                        None => 0,
                    },
                };
            }
            self.origin_of.push(last_idx);
        }
    }
}
