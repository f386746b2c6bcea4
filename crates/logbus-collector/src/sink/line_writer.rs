//! The line writer shared by the `stdout` and `file` sinks: records become
//! lines (JSON or text, with the producer's service name), formatted once per
//! chunk and format whatever the number of sinks writing that format, and
//! handed to the sink's destination through one narrow interface,
//! [`LineDest`] (write these bytes; flush; reopen; closed for good?).
//!
//! * A sink that is the only one of its format for a chunk formats the
//!   records it selects straight into its own reusable buffer, which is
//!   written whenever it reaches [`FLUSH_AT`] bytes, like a `BufWriter`: the
//!   lines are still in this core's cache when `write(2)` copies them, and
//!   records it does not take are not formatted at all.
//! * When several sinks write a format, or when the reader formatted the
//!   chunk ahead (it does while it has nothing to read, so that formatting
//!   and writing run on two cores:
//!   [`Chunk::claim_formatting`](crate::chunk::Chunk::claim_formatting)),
//!   the chunk's lines are formatted once for all of them
//!   ([`Chunk::lines`](crate::chunk::Chunk::lines)). A sink that takes every
//!   record of the chunk and has at least [`DIRECT_AT`] bytes of its lines
//!   to write writes them where they are (no copy); otherwise it copies the
//!   lines it selects into its buffer.
//!
//! A group counts as written when its last bytes are. After a failed write
//! the next attempt resumes at the first byte not written, so a retry
//! duplicates nothing.

use crate::chunk::LineFormatter;
use crate::config::Format;
use crate::queue::Job;
use crate::sink::{Output, WriteOutcome};

/// Bytes formatted before they are written.
pub const FLUSH_AT: usize = 64 * 1024;
/// A chunk's lines from this many bytes on are written where they are
/// rather than copied into the buffer first.
pub const DIRECT_AT: usize = 16 * 1024;

/// Where a line sink's bytes go: all a destination has to offer the
/// [`LineWriter`].
pub trait LineDest: Send {
    /// Writes `bytes` (whole lines): how many were written, and whether all
    /// were (else the error, one line).
    fn write(&mut self, bytes: &[u8]) -> (usize, Result<(), String>);

    /// Pushes what was written out of any buffer, at the end of a group.
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Reopens the destination (SIGHUP).
    fn reopen(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Whether the destination is gone for good.
    fn closed(&self) -> bool {
        false
    }
}

/// A sink that writes one line per record to `D`.
pub struct LineWriter<D> {
    dest: D,
    format: Format,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    done: usize,
    /// The next record to format: (job, record index in its chunk).
    next: (usize, usize),
    /// Being written straight from a chunk's lines: (job, the first byte
    /// of its lines not written yet). Goes before `next`.
    direct: Option<(usize, usize)>,
    /// Formats the chunks of which this sink is the only one of its format.
    formatter: LineFormatter,
    /// The job (index in the group) this sink is formatting itself.
    alone: Option<usize>,
}

impl<D: LineDest> LineWriter<D> {
    /// Writes `format` lines to `dest`.
    pub fn new(dest: D, format: Format) -> LineWriter<D> {
        LineWriter {
            dest,
            format,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            done: 0,
            next: (0, 0),
            direct: None,
            formatter: LineFormatter::new(format),
            alone: None,
        }
    }
    /// Puts the lines of the records the jobs select, from `self.next` on,
    /// into the buffer until it is full or the jobs are done: formatted here
    /// when this sink is the only one of its format for the chunk, else
    /// copied from the lines formatted once for all of them
    /// ([`crate::chunk::Chunk::lines`]), or marked to be written from there.
    /// Returns whether there is anything to write.
    fn fill(&mut self, jobs: &[Job]) -> bool {
        let (mut j, mut i) = self.next;
        while let Some(job) = jobs.get(j) {
            let c = &job.chunk;
            if self.alone != Some(j)
                && i == 0
                && !c.shares_lines(self.format)
                && c.claim_formatting(self.format)
            {
                self.alone = Some(j);
            }
            if self.alone == Some(j) {
                i = c.format_lines(
                    &mut self.formatter,
                    i,
                    &mut self.buf,
                    FLUSH_AT,
                    None,
                    |i, level| job.wants(i, level),
                );
                if i < c.batch.len() {
                    self.next = (j, i);
                    return true;
                }
            } else if job.takes_all() {
                let lines = c.lines(self.format);
                // Every record of the chunk: written where it is when it is
                // large (after what the buffer holds), else one copy.
                if i < lines.ends.len() {
                    let rest = lines.from(i);
                    if rest.len() >= DIRECT_AT {
                        if self.buf.is_empty() {
                            self.direct = Some((j, lines.buf.len() - rest.len()));
                            self.next = (j + 1, 0);
                        } else {
                            self.next = (j, i);
                        }
                        return true;
                    }
                    self.buf.extend_from_slice(rest);
                }
            } else {
                let lines = c.lines(self.format);
                while let Some(r) = c.batch.get(i) {
                    if self.buf.len() >= FLUSH_AT {
                        self.next = (j, i);
                        return true;
                    }
                    if job.wants(i, r.level() as u8) {
                        self.buf.extend_from_slice(lines.line(i));
                    }
                    i += 1;
                }
            }
            j += 1;
            i = 0;
            if self.buf.len() >= FLUSH_AT {
                self.next = (j, 0);
                return true;
            }
        }
        self.next = (j, 0);
        !self.buf.is_empty()
    }

    /// Writes `buf[done..]`, advancing `done` by what was written.
    fn flush_buf(&mut self) -> Result<(), String> {
        let (n, r) = self.dest.write(&self.buf[self.done..]);
        self.done += n;
        r
    }

    /// Writes what is left of the chunk being written directly, if any.
    fn flush_direct(&mut self, jobs: &[Job]) -> Result<(), String> {
        let Some((j, from)) = self.direct else {
            return Ok(());
        };
        let Some(job) = jobs.get(j) else {
            self.direct = None;
            return Ok(());
        };
        let lines = job.chunk.lines(self.format);
        let rest = &lines.buf[from.min(lines.buf.len())..];
        let (n, r) = self.dest.write(rest);
        self.direct = r.is_err().then_some((j, from + n));
        r
    }

    /// Writes the group, resuming where the last attempt failed.
    fn write_group(&mut self, jobs: &[Job]) -> Result<(), String> {
        loop {
            if self.done < self.buf.len() {
                self.flush_buf()?;
            }
            self.buf.clear();
            self.done = 0;
            self.flush_direct(jobs)?;
            if !self.fill(jobs) {
                break;
            }
        }
        self.next = (0, 0);
        self.alone = None;
        self.dest.flush()
    }
}

impl<D: LineDest> Output for LineWriter<D> {
    fn write(&mut self, jobs: &[Job]) -> WriteOutcome {
        match self.write_group(jobs) {
            Ok(()) => WriteOutcome::Written {
                partially_rejected: 0,
            },
            Err(e) if self.dest.closed() => WriteOutcome::Closed(e),
            Err(e) => WriteOutcome::RetryLater(e),
        }
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.dest.reopen()
    }

    fn discard(&mut self) {
        self.buf.clear();
        self.done = 0;
        self.next = (0, 0);
        self.direct = None;
        self.alone = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use logbus_ring::{Consumer, Event, Ring, RingOptions};

    use super::*;
    use crate::chunk::Chunk;
    use crate::sink::file::FileSink;
    use crate::sink::rotating::RotatingFile;

    /// The outcome of a write as a result: written, or the error.
    fn wrote(outcome: WriteOutcome) -> Result<(), String> {
        match outcome {
            WriteOutcome::Written {
                partially_rejected: 0,
            } => Ok(()),
            WriteOutcome::RetryLater(e) => Err(e),
            other => panic!("a file sink's write: {other:?}"),
        }
    }

    /// A ring of `mib` MiB in a new temporary directory.
    fn ring_in(name: &str, mib: u64) -> (logbus_testkit::TempDir, Ring) {
        let tmp = logbus_testkit::TempDir::new(name);
        let ring = Ring::create(
            tmp.dir().join("ring"),
            &RingOptions {
                size: mib << 20,
                ..RingOptions::default()
            },
        )
        .unwrap();
        (tmp, ring)
    }

    /// A failed write (ENOSPC from `/dev/full`) is an error; attempts go on
    /// failing while the file is full; after the file is fixed and reopened,
    /// the next attempt writes every line exactly once, in order: the
    /// buffers formatted before the failure, then the rest. Both when the
    /// sink formats alone and when the lines are shared with another sink.
    #[test]
    fn a_file_write_that_fails_resumes_without_loss_or_duplicates() {
        for shared in [false, true] {
            a_failed_write_resumes(shared);
        }
    }

    fn a_failed_write_resumes(shared: bool) {
        let (tmp, ring) = ring_in("lines", 4);
        let dir = tmp.dir();
        let mut w = ring.writer().unwrap();
        let pad = "x".repeat(200);
        for i in 0..2000 {
            w.emit(&Event::new(9, &format!("record {i} {pad}")))
                .unwrap();
        }
        let mut consumer = Consumer::acquire(&ring).unwrap();
        let mut chunk = Chunk::default();
        assert_eq!(consumer.poll(&mut chunk.batch, 4096), 2000);
        let mut expect = Vec::new();
        for r in chunk.batch.iter() {
            logbus_format::write_json_as(&mut expect, &r, None, Some(0));
        }
        assert!(expect.len() > 4 * FLUSH_AT, "several buffers");
        chunk.line_sinks = if shared { [2; 2] } else { [1; 2] };
        let jobs = [Job::new(Arc::new(chunk), 0x3f)];

        let out = dir.join("out.log");
        std::os::unix::fs::symlink("/dev/full", &out).unwrap();
        let file = RotatingFile::open(&out, None, 0).unwrap();
        let mut sink = FileSink::new(file, Format::Json);
        for _ in 0..2 {
            let e = wrote(sink.write(&jobs)).unwrap_err();
            assert!(e.contains("cannot write"), "{e}");
        }
        std::fs::remove_file(&out).unwrap();
        sink.reopen().unwrap();
        wrote(sink.write(&jobs)).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == expect,
            "lines lost or repeated"
        );
        // The next group starts afresh.
        wrote(sink.write(&jobs)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap().len(), 2 * expect.len());
        drop(sink);
        drop(tmp);
    }

    /// Chunks written in place (large, every record taken) and copied
    /// (small, or filtered by level) mix in one group in order, in both
    /// formats, after a failure and a retry too; and so do chunks a sink
    /// formats alone, mixed with shared ones.
    #[test]
    fn lines_written_in_place_and_copied_keep_their_order() {
        // Sinks of each chunk's format, chunk after chunk (in turn): all
        // shared, all alone, mixed.
        for sinks in [[2, 2, 2], [1, 1, 1], [2, 1, 0]] {
            lines_keep_their_order(sinks);
        }
    }

    fn lines_keep_their_order(sinks: [u8; 3]) {
        let (tmp, ring) = ring_in("lines-mix", 8);
        let dir = tmp.dir();
        let mut w = ring.writer().unwrap();
        let mut consumer = Consumer::acquire(&ring).unwrap();
        let pad = "y".repeat(150);
        let mut made = 0;
        let mut chunk = |n: usize, from: usize| {
            for i in from..from + n {
                let severity = if i % 3 == 0 { 5 } else { 9 }; // DEBUG or INFO
                w.emit(&Event::new(severity, &format!("record {i} {pad}")))
                    .unwrap();
            }
            let mut c = Chunk::default();
            assert_eq!(consumer.poll(&mut c.batch, n), n);
            c.resolve(from as u64, &mut crate::resolver::Resolver::new(&ring, 0));
            c.line_sinks = [sinks[made % 3]; 2];
            made += 1;
            consumer.commit_all();
            Arc::new(c)
        };
        let (big, small, filtered, tail) = (
            chunk(1000, 0),
            chunk(7, 1000),
            chunk(1000, 2000),
            chunk(300, 3000),
        );
        let info_only = 1u8 << logbus_ring::Level::Info as u8;
        let jobs = [
            Job::new(small.clone(), 0x3f),
            Job::new(big.clone(), 0x3f),
            Job::new(filtered.clone(), info_only),
            Job::new(small.clone(), 0x3f),
            Job::new(tail.clone(), 0x3f),
            Job::new(big.clone(), 0x3f),
        ];
        for format in [Format::Json, Format::Text] {
            let mut expect = Vec::new();
            for job in &jobs {
                for (i, r) in job.chunk.batch.iter().enumerate() {
                    if job.wants(i, r.level() as u8) {
                        match format {
                            Format::Json => logbus_format::write_json_as(
                                &mut expect,
                                &r,
                                None,
                                Some(job.chunk.uid),
                            ),
                            Format::Text => logbus_format::write_text(&mut expect, &r, None),
                        }
                    }
                }
            }
            let out = dir.join(format!("out-{}-{sinks:?}.log", format as usize));
            std::os::unix::fs::symlink("/dev/full", &out).unwrap();
            let mut sink = FileSink::new(RotatingFile::open(&out, None, 0).unwrap(), format);
            assert!(wrote(sink.write(&jobs)).is_err());
            std::fs::remove_file(&out).unwrap();
            sink.reopen().unwrap();
            wrote(sink.write(&jobs)).unwrap();
            let got = std::fs::read(&out).unwrap();
            if got != expect {
                let first = got.iter().zip(&expect).position(|(a, b)| a != b);
                panic!(
                    "{format:?}: got {} expected {} bytes, first difference at {first:?}: {:?}",
                    got.len(),
                    expect.len(),
                    first.map(
                        |f| String::from_utf8_lossy(&got[f.saturating_sub(100)..f + 100])
                            .into_owned()
                    )
                );
            }
        }
        drop(tmp);
    }

    /// The reader formats chunks ahead (newest first) while the sink, alone
    /// with its format, formats others itself: whoever claims a chunk
    /// formats it, the other side uses or skips it, and the file gets every
    /// line once, in order.
    #[test]
    fn a_reader_formatting_ahead_and_a_sink_formatting_alone_write_each_line_once() {
        let (tmp, ring) = ring_in("lines-ahead", 4);
        let dir = tmp.dir();
        let mut w = ring.writer().unwrap();
        let mut consumer = Consumer::acquire(&ring).unwrap();
        let mut resolver = crate::resolver::Resolver::new(&ring, 0);
        let mut chunks = Vec::new();
        let mut expect = Vec::new();
        for k in 0..200u64 {
            for i in 0..50 {
                w.emit(&Event::new(9, &format!("chunk {k} record {i}")))
                    .unwrap();
            }
            let mut c = Chunk::default();
            assert_eq!(consumer.poll(&mut c.batch, 50), 50);
            c.resolve(k, &mut resolver);
            c.line_sinks = [1; 2];
            consumer.commit_all();
            for r in c.batch.iter() {
                logbus_format::write_json_as(&mut expect, &r, None, Some(c.uid));
            }
            chunks.push(Arc::new(c));
        }
        let out = dir.join("out.log");
        let mut sink = FileSink::new(RotatingFile::open(&out, None, 0).unwrap(), Format::Json);
        // Some formatted ahead for sure, the rest raced for.
        for k in [1, 100, 150] {
            assert!(chunks[k].claim_formatting(Format::Json));
            chunks[k].lines(Format::Json);
        }
        let ahead = chunks.clone();
        let reader = std::thread::spawn(move || {
            for c in ahead.iter().rev() {
                if c.claim_formatting(Format::Json) {
                    c.lines(Format::Json);
                }
            }
        });
        for group in chunks.chunks(3) {
            let jobs: Vec<Job> = group.iter().map(|c| Job::new(c.clone(), 0x3f)).collect();
            wrote(sink.write(&jobs)).unwrap();
        }
        reader.join().unwrap();
        assert!(
            std::fs::read(&out).unwrap() == expect,
            "lines lost, repeated or out of order"
        );
        drop(tmp);
    }
}
