//! The `null` sink's table: no keys of its own.

use crate::config::table::sink_table;
use crate::config::SinkKind;

sink_table! {
    /// A `null` sink's own keys: none.
    NullTable => NullOptions {}
}

impl NullOptions {
    /// The sink's kind.
    pub(crate) fn kind(self) -> Result<SinkKind, (&'static str, String)> {
        Ok(SinkKind::Null)
    }
}
