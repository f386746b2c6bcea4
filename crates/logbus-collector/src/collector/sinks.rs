//! The sinks' lifecycle as the reader sees it: started (at start and at
//! reload, keeping the running sink of an unchanged configuration and the
//! counters of one of the same name and type), retired ones reaped, an
//! output gone for good noticed, and their drops reported.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Collector, StartError};
use crate::config::SinkConfig;
use crate::notice::Notice;
use crate::queue::SinkQueue;
use crate::sink;
use crate::stats::SinkStats;

/// At most one line about a sink's drops this often.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

pub(super) struct SinkHandle {
    pub(super) config: SinkConfig,
    pub(super) queue: Arc<SinkQueue>,
    pub(super) mask: u8,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Starts sinks for `configs`; reuses (takes out of `old`) the running sink
    /// of identical configuration. On error, the sinks started so far are closed.
    pub(super) fn start_sinks(
        &self,
        configs: &[SinkConfig],
        old: &mut Vec<SinkHandle>,
    ) -> Result<Vec<SinkHandle>, StartError> {
        let mut out: Vec<SinkHandle> = Vec::new();
        let mut kept: Vec<usize> = Vec::new();
        let result = (|| {
            for cfg in configs {
                if let Some(i) = old.iter().position(|o| &o.config == cfg) {
                    kept.push(out.len());
                    let h = old.remove(i);
                    out.push(h);
                    continue;
                }
                let output = sink::open_output(cfg).map_err(StartError::Sink)?;
                let predecessor = old.iter().find(|o| o.config.name == cfg.name);
                // Counters carry over to a sink of the same name and type.
                let stats = predecessor
                    .filter(|p| p.queue.stats.kind == cfg.kind.type_name())
                    .map_or_else(
                        || Arc::new(SinkStats::new(&cfg.name, cfg.kind.type_name())),
                        |p| p.queue.stats.clone(),
                    );
                let queue = Arc::new(SinkQueue::new(cfg.queue, stats));
                let thread = sink::spawn(
                    queue.clone(),
                    output,
                    predecessor.map(|p| p.queue.clone()),
                    self.config.shutdown_timeout,
                    self.notify.clone(),
                    sink::Reader {
                        thread: self.reader.clone(),
                        waker: self.waker.clone(),
                    },
                )
                .map_err(StartError::Thread)?;
                out.push(SinkHandle {
                    mask: cfg.level_mask(),
                    config: cfg.clone(),
                    queue,
                    thread: Some(thread),
                });
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                // Give the kept ones back; close the new ones (they hold nothing).
                for (i, h) in out.into_iter().enumerate() {
                    if kept.contains(&i) {
                        old.push(h);
                    } else {
                        h.queue.close();
                    }
                }
                Err(e)
            }
        }
    }

    pub(super) fn reap_retired(&mut self) {
        self.retiring.retain_mut(|h| {
            if h.queue.is_finished() {
                // Its counters are shown no more (see `ledger.rs`).
                h.queue.pay_debt();
                if let Some(t) = h.thread.take() {
                    let _ = t.join();
                }
                false
            } else {
                true
            }
        });
    }

    /// Whether a sink's output is gone for good (stdout closed): then the
    /// collector shuts down, like `logbus-collector | head` should.
    pub(super) fn output_gone(&self) -> bool {
        match self.sinks.iter().find(|s| s.queue.is_broken()) {
            Some(s) => {
                (self.notify)(Notice::OutputClosed {
                    sink: s.config.name.clone(),
                });
                true
            }
            None => false,
        }
    }

    /// One stderr line per sink per 10 s when it dropped records meanwhile.
    pub(super) fn report_drops(&mut self, now: Instant) {
        for s in &self.sinks {
            let stats = &s.queue.stats;
            let total = stats.dropped_total();
            let (seen, at) = self
                .drops_reported
                .entry(stats.name.clone())
                .or_insert((0, None));
            let due = at.is_none_or(|t| now.duration_since(t) >= DROP_REPORT_EVERY);
            if total > *seen && due {
                (self.notify)(Notice::SinkShed {
                    sink: stats.name.clone(),
                    now: total - *seen,
                    total,
                });
                (*seen, *at) = (total, Some(now));
            }
        }
    }
}
