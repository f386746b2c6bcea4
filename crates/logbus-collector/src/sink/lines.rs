//! Line sinks: `stdout`, `file` and `null`. Each group of jobs is formatted into
//! one reusable buffer (JSON or text lines, with the producer's service name)
//! and written with one call, then the buffer is kept for the next group.

use std::io::Write;

use logbus_format::{write_json, write_text};

use crate::config::Format;
use crate::queue::Job;
use crate::sink::file::RotatingFile;
use crate::sink::Output;

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
    /// Bytes of `buf` already written (a retry resumes there).
    done: usize,
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

    /// Formats as JSON, then discards.
    pub fn null() -> LineSink {
        LineSink::new(Dest::Null, Format::Json)
    }

    fn new(dest: Dest, format: Format) -> LineSink {
        LineSink {
            dest,
            format,
            buf: Vec::with_capacity(1 << 20),
            done: 0,
        }
    }
}

/// Appends the selected records of `jobs` to `buf` as lines.
pub fn format_jobs(buf: &mut Vec<u8>, jobs: &[Job], format: Format) {
    for job in jobs {
        let c = &job.chunk;
        for (i, r) in c.selected(job.mask) {
            match format {
                Format::Json => write_json(buf, &r, c.service(i)),
                Format::Text => write_text(buf, &r, c.service(i)),
            }
        }
    }
}

impl Output for LineSink {
    fn write(&mut self, jobs: &[Job]) -> Result<(), String> {
        if self.done == 0 && self.buf.is_empty() {
            format_jobs(&mut self.buf, jobs, self.format);
        }
        let rest = &self.buf[self.done..];
        let result = match &mut self.dest {
            Dest::Null => Ok(()),
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                let mut written = 0;
                let r = loop {
                    if written == rest.len() {
                        break out.flush();
                    }
                    match out.write(&rest[written..]) {
                        Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => written += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                self.done += written;
                r.map_err(|e| format!("cannot write to stdout: {e}"))
            }
            Dest::File(f) => {
                let r = f.write_lines(rest);
                self.done += r.as_ref().map_or_else(|(n, _)| *n, |n| *n);
                r.map(|_| ()).map_err(|(_, e)| e)
            }
        };
        if result.is_ok() {
            self.buf.clear();
            self.done = 0;
        }
        result
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
    }
}
