//! Partial success. An OTLP endpoint may accept a request but reject some of
//! its records (`ExportLogsServiceResponse.partial_success`). `opentelemetry-
//! otlp` 0.33 does not return that to its caller; it only reports it as an
//! internal `tracing` warning (`TonicLogsClient.PartialSuccess` or
//! `HttpLogsClient.PartialSuccess`, with a `rejected_log_records` field). So
//! the exporter runs each export under a thread-scoped subscriber of its own
//! that counts those warnings and nothing else (a program's global subscriber
//! is untouched, and sees nothing of them during an export).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Interest, Metadata, Subscriber};

/// Counts the records endpoints rejected in partially successful exports.
pub(crate) struct PartialCount {
    rejected: Arc<AtomicU64>,
}

impl PartialCount {
    /// A subscriber adding to `rejected`.
    pub(crate) fn new(rejected: Arc<AtomicU64>) -> PartialCount {
        PartialCount { rejected }
    }
}

fn is_partial(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("opentelemetry") && meta.name().ends_with("PartialSuccess")
}

struct Rejected(u64);

impl Visit for Rejected {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rejected_log_records" {
            self.0 += value;
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "rejected_log_records" {
            self.0 += value.max(0) as u64;
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl Subscriber for PartialCount {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // Sometimes, not never: this subscriber is active only during exports,
        // on the exporting thread, and must not make the callsite dead for the
        // program's own subscriber.
        if is_partial(meta) {
            Interest::always()
        } else {
            Interest::sometimes()
        }
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        is_partial(meta)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut r = Rejected(0);
        event.record(&mut r);
        // Relaxed: a counter read by the same thread after the export returns.
        self.rejected.fetch_add(r.0, Ordering::Relaxed);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
