//! [`LogbusLayer`]: a `tracing_subscriber::Layer` that writes every event into
//! the ring.
//!
//! * At span creation (and `Span::record`) the span's fields are copied into a
//!   span extension ([`SpanFields`]): this allocates, once per span. Fields named
//!   `trace_id`, `span_id` (hex) or `traceparent` (W3C) become the span's trace
//!   context instead of fields.
//! * Per event, nothing is allocated: the event's fields are collected into a
//!   thread-local [`FieldBuf`], the fields of its spans are copied after them
//!   (innermost span first, a key already present is skipped), the message is
//!   formatted into a thread-local `String`, and the record is written through
//!   the thread's writer.
//! * Trace context, first found wins: the current OpenTelemetry context (feature
//!   `otel`), the OpenTelemetry context `tracing-opentelemetry` keeps for the
//!   event's span (feature `otel`, when its context activation is off), the
//!   innermost span with `trace_id`/`traceparent` fields. No context: no ids.
//! * Events bridged from the `log` crate (by [`crate::init`]) get their real
//!   target and level back, and their key/values as fields.

use std::cell::RefCell;
use std::fmt;

use logbus_ring::{Event as RingEvent, Field as RingField};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::fields::{
    bounded, parse_hex, parse_traceparent, FieldBuf, Key, StackStr, TraceCtx, Val, EMPTY_FIELDS,
    MAX_VALUE,
};
use crate::producer::Producer;

/// OpenTelemetry severity number of a `tracing` level (TRACE 1, DEBUG 5, INFO 9,
/// WARN 13, ERROR 17).
pub fn severity_of(level: &Level) -> u8 {
    use logbus_ring::Level as L;
    match *level {
        Level::TRACE => L::Trace,
        Level::DEBUG => L::Debug,
        Level::INFO => L::Info,
        Level::WARN => L::Warn,
        Level::ERROR => L::Error,
    }
    .severity()
}

/// A `tracing_subscriber::Layer` writing events into a ring through a [`Producer`].
///
/// Made by [`crate::layer`] or [`crate::Builder`]; compose it with other layers:
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("logbus-doc-layer-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use tracing_subscriber::prelude::*;
/// let layer = logbus::Builder::new()
///     .ring_path(dir.join("ring"))
///     .service_name("billing")
///     .build_layer()?;
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(amount = 12.5, "invoice paid");
/// });
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), logbus::Error>(())
/// ```
#[derive(Debug)]
pub struct LogbusLayer {
    producer: Producer,
    #[cfg(feature = "otel")]
    dispatch: std::sync::OnceLock<tracing_core::dispatcher::WeakDispatch>,
}

impl LogbusLayer {
    /// A layer writing through `producer`.
    pub fn new(producer: Producer) -> LogbusLayer {
        LogbusLayer {
            producer,
            #[cfg(feature = "otel")]
            dispatch: std::sync::OnceLock::new(),
        }
    }

    /// The producer records go through.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }
}

/// A span's fields and trace context, stored in its extensions at creation.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    fields: FieldBuf,
    trace: TraceCtx,
}

/// Per-thread buffers reused by every event.
pub(crate) struct Scratch {
    pub(crate) message: String,
    pub(crate) target: String,
    pub(crate) fields: FieldBuf,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            message: String::with_capacity(1024),
            target: String::with_capacity(128),
            fields: FieldBuf::with_capacity(4096),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Runs `f` with this thread's scratch buffers, or fresh ones when they are in
/// use further up the stack (an event logged while formatting a field) or gone
/// (thread exit).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut f = Some(f);
    let r = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => Some((f.take().expect("called once"))(&mut s)),
        Err(_) => None,
    });
    match (r, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut Scratch::new()),
        (_, None) => unreachable!("the closure ran but returned nothing"),
    }
}

/// Collects an event's fields: `message` into the message buffer, the rest into
/// `fields`; for a bridged `log` record, `log.target` into `target` and the
/// other `log.*` fields nowhere.
struct EventVisitor<'s> {
    message: &'s mut String,
    target: &'s mut String,
    fields: &'s mut FieldBuf,
    is_log: bool,
}

impl EventVisitor<'_> {
    /// Handles fields that are not ordinary; `true` if `field` was one.
    fn special(&mut self, field: &Field, args: fmt::Arguments<'_>) -> bool {
        let name = field.name();
        if name == "message" {
            let _ = fmt::Write::write_fmt(&mut bounded(self.message, MAX_VALUE), args);
            true
        } else if self.is_log && name.starts_with("log.") {
            if name == "log.target" {
                let _ = fmt::Write::write_fmt(&mut bounded(self.target, 1024), args);
            }
            true
        } else {
            false
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields
            .push_new(Key::Static(field.name()), Val::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if !(self.is_log && field.name().starts_with("log.")) {
            self.fields
                .push_new(Key::Static(field.name()), Val::I64(value));
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if !(self.is_log && field.name().starts_with("log.")) {
            self.fields
                .push_new(Key::Static(field.name()), Val::U64(value));
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.record_u64(field, v),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .push_new(Key::Static(field.name()), Val::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field, format_args!("{value}")) {
            self.fields.push_new_str(Key::Static(field.name()), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.special(field, format_args!("{value:?}")) {
            self.fields
                .push_new_fmt(Key::Static(field.name()), format_args!("{value:?}"));
        }
    }
}

/// Collects a span's fields; trace context fields go to `trace`.
struct SpanVisitor<'s>(&'s mut SpanFields);

impl SpanVisitor<'_> {
    /// Takes `value` as trace context if `field` names one; `true` if it did.
    fn trace_field(&mut self, field: &Field, value: &str) -> bool {
        let t = &mut self.0.trace;
        match field.name() {
            "trace_id" => {
                t.trace_id = parse_hex::<16>(value);
                true
            }
            "span_id" => {
                t.span_id = parse_hex::<8>(value);
                true
            }
            "traceparent" => {
                *t = parse_traceparent(value).unwrap_or_default();
                true
            }
            _ => false,
        }
    }
}

fn is_trace_field(field: &Field) -> bool {
    matches!(field.name(), "trace_id" | "span_id" | "traceparent")
}

impl Visit for SpanVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0
            .fields
            .push(Key::Static(field.name()), Val::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0
            .fields
            .push(Key::Static(field.name()), Val::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "span_id" {
            self.0.trace.span_id = (value != 0).then(|| value.to_be_bytes());
            return;
        }
        self.0
            .fields
            .push(Key::Static(field.name()), Val::U64(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        if field.name() == "trace_id" {
            self.0.trace.trace_id = (value != 0).then(|| value.to_be_bytes());
            return;
        }
        match u64::try_from(value) {
            Ok(v) => self.record_u64(field, v),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0
            .fields
            .push(Key::Static(field.name()), Val::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.trace_field(field, value) {
            self.0.fields.push_str(Key::Static(field.name()), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if is_trace_field(field) {
            let s = StackStr::format(format_args!("{value:?}"));
            self.trace_field(field, s.as_str().unwrap_or(""));
            return;
        }
        self.0
            .fields
            .push_fmt(Key::Static(field.name()), format_args!("{value:?}"));
    }
}

impl<S> Layer<S> for LogbusLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        #[cfg(feature = "otel")]
        let _ = self.dispatch.set(subscriber.downgrade());
        #[cfg(not(feature = "otel"))]
        let _ = subscriber;
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut sf = SpanFields::default();
        attrs.record(&mut SpanVisitor(&mut sf));
        let mut ext = span.extensions_mut();
        // Two logbus layers in one subscriber: the first one stored the same data.
        if ext.get_mut::<SpanFields>().is_none() {
            ext.insert(sf);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanFields>() {
            Some(sf) => values.record(&mut SpanVisitor(sf)),
            None => {
                let mut sf = SpanFields::default();
                values.record(&mut SpanVisitor(&mut sf));
                ext.insert(sf);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        with_scratch(|s| self.write_event(s, event, &ctx));
    }
}

impl LogbusLayer {
    fn write_event<S>(&self, s: &mut Scratch, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        s.message.clear();
        s.target.clear();
        s.fields.clear();
        let meta = event.metadata();
        let is_log = event.is_log();
        event.record(&mut EventVisitor {
            message: &mut s.message,
            target: &mut s.target,
            fields: &mut s.fields,
            is_log,
        });
        if is_log {
            crate::log_bridge::take_stashed_kv(&mut s.fields);
        }

        let mut trace = current_otel_context();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let ext = span.extensions();
                if let Some(sf) = ext.get::<SpanFields>() {
                    if !s.fields.is_full() {
                        s.fields.merge_from(&sf.fields);
                    }
                    if !trace.is_some() && sf.trace.is_some() {
                        trace = sf.trace;
                    }
                }
            }
        }
        #[cfg(feature = "otel")]
        if !trace.is_some() {
            if let Some(id) = ctx.event_span(event).map(|s| s.id()) {
                trace = self.span_otel_context(&id);
            }
        }

        let target = if is_log && !s.target.is_empty() {
            s.target.as_str()
        } else {
            meta.target()
        };
        let mut fields: [RingField<'_>; crate::fields::MAX_FIELDS] = EMPTY_FIELDS;
        let n = s.fields.fields(&mut fields);
        self.producer.emit(&RingEvent {
            severity: severity_of(meta.level()),
            time_ns: 0,
            target,
            message: &s.message,
            fields: &fields[..n],
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            trace_flags: trace.flags,
        });
    }

    /// The context tracing-opentelemetry keeps for span `id` (it is also the
    /// current OpenTelemetry context while the span is entered, unless its
    /// context activation is off).
    #[cfg(feature = "otel")]
    fn span_otel_context(&self, id: &Id) -> TraceCtx {
        let Some(dispatch) = self.dispatch.get().and_then(|d| d.upgrade()) else {
            return TraceCtx::default();
        };
        tracing_opentelemetry::get_otel_context(id, &dispatch)
            .map(|cx| otel_trace(&cx))
            .unwrap_or_default()
    }
}

/// The trace context of the current OpenTelemetry context, if it has a valid span.
#[cfg(feature = "otel")]
pub(crate) fn current_otel_context() -> TraceCtx {
    opentelemetry::Context::map_current(otel_trace)
}

/// Without the `otel` feature there is no OpenTelemetry context.
#[cfg(not(feature = "otel"))]
pub(crate) fn current_otel_context() -> TraceCtx {
    TraceCtx::default()
}

#[cfg(feature = "otel")]
fn otel_trace(cx: &opentelemetry::Context) -> TraceCtx {
    use opentelemetry::trace::TraceContextExt;
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return TraceCtx::default();
    }
    TraceCtx {
        trace_id: Some(sc.trace_id().to_bytes()),
        span_id: Some(sc.span_id().to_bytes()),
        flags: sc.trace_flags().to_u8(),
    }
}
