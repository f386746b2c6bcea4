//! The `stdout` sink: JSON or text lines on the collector's standard output
//! (the [`LineWriter`] over [`Stdout`]). Standard output closed by its reader
//! (EPIPE) closes the sink for good, and the collector shuts down.

use std::io::{ErrorKind, Write};

pub(crate) mod config;

use crate::config::Format;
use crate::sink::line_writer::{LineDest, LineWriter};

/// The `stdout` sink.
pub type StdoutSink = LineWriter<Stdout>;

/// Opens a `stdout` sink writing `format` lines.
pub fn open(format: Format) -> StdoutSink {
    LineWriter::new(Stdout { closed: false }, format)
}

/// The collector's standard output, as a line destination.
pub struct Stdout {
    /// Closed by its reader (EPIPE).
    closed: bool,
}

impl Stdout {
    fn error(&mut self, e: &std::io::Error) -> String {
        self.closed |= e.kind() == ErrorKind::BrokenPipe;
        format!("cannot write to stdout: {e}")
    }
}

impl LineDest for Stdout {
    fn write(&mut self, bytes: &[u8]) -> (usize, Result<(), String>) {
        let mut out = std::io::stdout().lock();
        let mut written = 0;
        let r = loop {
            if written == bytes.len() {
                break Ok(());
            }
            match out.write(&bytes[written..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        drop(out);
        (written, r.map_err(|e| self.error(&e)))
    }

    fn flush(&mut self) -> Result<(), String> {
        let r = std::io::stdout().lock().flush();
        r.map_err(|e| self.error(&e))
    }

    fn closed(&self) -> bool {
        self.closed
    }
}
