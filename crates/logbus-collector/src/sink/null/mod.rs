//! The `null` sink: discards every record, formatting nothing. What is left
//! is the collector's own cost of reading, queueing and committing (for
//! benchmarks).

use crate::queue::Job;
use crate::sink::{Output, WriteOutcome};

pub(crate) mod config;

/// The `null` sink.
pub struct NullSink;

impl Output for NullSink {
    fn write(&mut self, _jobs: &[Job]) -> WriteOutcome {
        WriteOutcome::Written {
            partially_rejected: 0,
        }
    }
}
