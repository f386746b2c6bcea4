//! Line sinks: `stdout`, `file` and `null` (which discards). Records are
//! formatted (JSON or text lines, with the producer's service name) once per
//! chunk and format, whatever the number of sinks writing that format; each
//! sink copies the lines it selects into a reusable buffer that is written
//! whenever it reaches 64 KiB, like a `BufWriter`; a group counts as written
//! when its last bytes are. After a failed write the next attempt
//! resumes at the first byte not written, so a retry duplicates nothing.

use std::io::{ErrorKind, Write};

use crate::config::Format;
use crate::queue::Job;
use crate::sink::rotating::RotatingFile;
use crate::sink::Output;

/// Bytes formatted before they are written.
pub const FLUSH_AT: usize = 64 * 1024;

enum Dest {
    Stdout,
    File(RotatingFile),
    Null,
}

/// A sink that writes one line per record.
pub struct LineSink {
    dest: Dest,
    format: Format,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    done: usize,
    /// The next record to format: (job, record index in its chunk).
    next: (usize, usize),
    /// Standard output was closed by its reader (EPIPE).
    closed: bool,
}

impl LineSink {
    /// Writes to standard output.
    pub fn stdout(format: Format) -> LineSink {
        LineSink::new(Dest::Stdout, format)
    }

    /// Writes to a (rotating) file.
    pub fn file(file: RotatingFile, format: Format) -> LineSink {
        LineSink::new(Dest::File(file), format)
    }

    /// Discards (formats nothing): what is left is the collector's own cost
    /// of reading, queueing and committing.
    pub fn null() -> LineSink {
        LineSink::new(Dest::Null, Format::Json)
    }

    fn new(dest: Dest, format: Format) -> LineSink {
        LineSink {
            dest,
            format,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            done: 0,
            next: (0, 0),
            closed: false,
        }
    }

    /// Copies the lines of the records the jobs select, from `self.next` on,
    /// until the buffer is full or the jobs are done; the lines are formatted
    /// once per chunk and format, for every sink of that format
    /// ([`crate::chunk::Chunk::lines`]). Returns whether anything was copied.
    fn fill(&mut self, jobs: &[Job]) -> bool {
        let (mut j, mut i) = self.next;
        while let Some(job) = jobs.get(j) {
            let c = &job.chunk;
            let lines = c.lines(self.format);
            if job.takes_all() {
                // Every record of the chunk: one copy of what is left.
                if i < lines.ends.len() {
                    self.buf.extend_from_slice(lines.from(i));
                }
            } else {
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
        let rest = &self.buf[self.done..];
        match &mut self.dest {
            Dest::Null => {
                self.done = self.buf.len();
                Ok(())
            }
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                let mut written = 0;
                let r = loop {
                    if written == rest.len() {
                        break Ok(());
                    }
                    match out.write(&rest[written..]) {
                        Ok(0) => break Err(ErrorKind::WriteZero.into()),
                        Ok(n) => written += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                self.done += written;
                r.map_err(|e| {
                    self.closed |= e.kind() == ErrorKind::BrokenPipe;
                    format!("cannot write to stdout: {e}")
                })
            }
            Dest::File(f) => match f.write_lines(rest) {
                Ok(n) => {
                    self.done += n;
                    Ok(())
                }
                Err((n, e)) => {
                    self.done += n;
                    Err(e)
                }
            },
        }
    }
}

impl Output for LineSink {
    fn write(&mut self, jobs: &[Job]) -> Result<(), String> {
        if let Dest::Null = self.dest {
            return Ok(());
        }
        loop {
            if self.done < self.buf.len() {
                self.flush_buf()?;
            }
            self.buf.clear();
            self.done = 0;
            if !self.fill(jobs) {
                break;
            }
        }
        self.next = (0, 0);
        if let Dest::Stdout = self.dest {
            std::io::stdout().lock().flush().map_err(|e| {
                self.closed |= e.kind() == ErrorKind::BrokenPipe;
                format!("cannot write to stdout: {e}")
            })?;
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), String> {
        match &mut self.dest {
            Dest::File(f) => f.reopen(),
            _ => Ok(()),
        }
    }

    fn discard(&mut self) {
        self.buf.clear();
        self.done = 0;
        self.next = (0, 0);
    }

    fn closed(&self) -> bool {
        self.closed
    }
}
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use logbus_ring::{Consumer, Event, Ring, RingOptions};

    use super::*;
    use crate::chunk::Chunk;

    /// A failed write (ENOSPC from `/dev/full`) is an error; attempts go on
    /// failing while the file is full; after the file is fixed and reopened,
    /// the next attempt writes every line exactly once, in order: the
    /// buffers formatted before the failure, then the rest.
    #[test]
    fn a_file_write_that_fails_resumes_without_loss_or_duplicates() {
        let tmp = logbus_testkit::TempDir::new("lines");
        let dir = tmp.dir();
        let ring = Ring::create(
            dir.join("ring"),
            &RingOptions {
                size: 4 << 20,
                ..RingOptions::default()
            },
        )
        .unwrap();
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
        let jobs = [Job::new(Arc::new(chunk), 0x3f)];

        let out = dir.join("out.log");
        std::os::unix::fs::symlink("/dev/full", &out).unwrap();
        let file = RotatingFile::open(&out, None, 0).unwrap();
        let mut sink = LineSink::file(file, Format::Json);
        for _ in 0..2 {
            let e = sink.write(&jobs).unwrap_err();
            assert!(e.contains("cannot write"), "{e}");
        }
        std::fs::remove_file(&out).unwrap();
        sink.reopen().unwrap();
        sink.write(&jobs).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == expect,
            "lines lost or repeated"
        );
        // The next group starts afresh.
        sink.write(&jobs).unwrap();
        assert_eq!(std::fs::read(&out).unwrap().len(), 2 * expect.len());
        drop(sink);
        drop(tmp);
    }
}
