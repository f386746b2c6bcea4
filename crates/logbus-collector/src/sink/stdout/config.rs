//! The `stdout` sink's table: `format` (`json`, the default, or `text`).

use crate::config::table::sink_table;
use crate::config::{Format, SinkKind};

sink_table! {
    /// A `stdout` sink's own keys.
    StdoutTable => StdoutOptions {
        /// Line format (default JSON).
        format: Option<Format>,
    }
}

impl StdoutOptions {
    /// The sink's kind, validated (else the key and the problem).
    pub(crate) fn kind(self) -> Result<SinkKind, (&'static str, String)> {
        Ok(SinkKind::Stdout {
            format: self.format.unwrap_or(Format::Json),
        })
    }
}
