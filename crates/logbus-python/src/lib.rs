//! `logbus._logbus`: the native half of the `logbus` Python package.
//!
//! One class, `Producer`, wraps a [`logbus::Producer`] and turns a
//! `logging.LogRecord` into one ring record in a single call: level, logger
//! name, message, `extra` attributes as typed fields, traceback, trace context.
//! `logbus.Handler` (python/logbus/__init__.py) is the `logging.Handler` on top.
//!
//! # Cost
//! The record's attributes are read from its `__dict__` with interned keys
//! (no attribute lookup through the type), strings are borrowed from the
//! `str` objects' cached UTF-8 (no copy), and the `__dict__` is scanned for
//! `extra` attributes only when it holds more entries than a plain record.
//! Nothing is allocated on the Rust side unless the record has fields.
#![deny(missing_docs)]

use std::ffi::c_char;
use std::path::PathBuf;

use logbus::{Builder, Event, Field, Outcome, Value};
use pyo3::exceptions::{PyException, PyRecursionError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::{ffi, intern};

pyo3::create_exception!(
    _logbus,
    LogbusError,
    PyException,
    "A record could not be written (the ring cannot be opened)."
);

/// Fields per record; the ring's producer keeps this many.
const MAX_FIELDS: usize = logbus::MAX_FIELDS;

/// Writes `logging.LogRecord`s into a ring.
///
/// `Producer(ring, service, std_keys, format_exc, get_span=None, span_var=None, release_gil=False, handler=None)`:
/// `ring` a path or None (`$LOGBUS_RING`, else `/dev/shm/logbus`); `service`
/// or None (`$OTEL_SERVICE_NAME`, else the executable); `std_keys` the
/// attribute names of a plain `LogRecord` (never fields); `format_exc(record)`
/// returns the traceback text of a record with `exc_info`/`stack_info`;
/// `get_span()` returns the current OpenTelemetry span (or None to skip);
/// `span_var` is `(ContextVar, key)` when OpenTelemetry keeps its context as a
/// dict in that variable, with the span under `key` (a faster way to the same
/// span); `release_gil` releases the GIL around the ring write; `handler` is
/// `(weakref to the logging.Handler, its filters list, report)` for
/// [`Producer::handle`], where `report(weakref, record, exc)` passes a failure
/// to the handler's `handleError`.
#[pyclass(frozen, module = "logbus._logbus")]
struct Producer {
    inner: logbus::Producer,
    std_keys: Py<PyFrozenSet>,
    std_len: usize,
    record_type: Py<PyType>,
    format_exc: Py<PyAny>,
    get_span: Option<Py<PyAny>>,
    /// OpenTelemetry's context variable and span key (see `trace_context`).
    span_var: Option<(Py<PyAny>, Py<PyAny>)>,
    release_gil: bool,
    /// The owning handler (weakly: no reference cycle), its filters, and the
    /// error reporter (see the class docs).
    handler: Option<(Py<PyAny>, Py<PyList>, Py<PyAny>)>,
}

/// `logging` level number to OpenTelemetry severity: DEBUG 10 -> 5, INFO 20 -> 9,
/// WARNING 30 -> 13, ERROR 40 -> 17, CRITICAL 50 -> 21, other levels on the
/// same scale (1 + levelno * 0.4, rounded down), clamped to 1-24.
fn severity_of(levelno: i64) -> u8 {
    let s = 1 + levelno.clamp(0, 100) * 4 / 10;
    s.clamp(1, 24) as u8
}

/// The UTF-8 of a `str`, borrowed from the object (CPython caches it in the
/// object on first use, so this copies nothing after the first call).
/// `None` when it cannot be encoded (lone surrogates); the error is cleared.
fn utf8<'a>(s: &'a Bound<'_, PyString>) -> Option<&'a str> {
    extern "C" {
        // Exported by every CPython 3.x (stable ABI from 3.10 on; present, with
        // the same signature, in 3.9).
        fn PyUnicode_AsUTF8AndSize(
            o: *mut ffi::PyObject,
            size: *mut ffi::Py_ssize_t,
        ) -> *const c_char;
    }
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live `str` (we hold a reference and the GIL); the
    // returned buffer belongs to the object and lives as long as it does,
    // which outlives 'a because `s` is borrowed for 'a.
    let p = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut len) };
    if p.is_null() {
        // SAFETY: the call above set an exception; we hold the GIL.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let len = usize::try_from(len).ok()?;
    // SAFETY: CPython returns `len` bytes of valid UTF-8 at `p`, alive as above.
    Some(unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p.cast::<u8>(), len)) })
}

/// A `str` as is, anything else as `str(obj)`.
fn to_text(obj: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyString>> {
    match obj.cast_into::<PyString>() {
        Ok(s) => Ok(s),
        Err(e) => e.into_inner().str(),
    }
}

/// [`to_text`], kept alive in `keep`; returns its index there.
fn keep_text<'py>(
    obj: &Bound<'py, PyAny>,
    keep: &mut Vec<Bound<'py, PyString>>,
) -> PyResult<usize> {
    keep.push(to_text(obj.clone())?);
    Ok(keep.len() - 1)
}

/// Lossless where possible, else `"?"`-replaced text.
fn lossy<'a>(s: &'a Bound<'_, PyString>, scratch: &'a mut Option<String>) -> &'a str {
    match utf8(s) {
        Some(t) => t,
        None => scratch.insert(s.to_string_lossy().into_owned()),
    }
}

/// Hex (32 or 16 digits) or an int; all zero or unparsable is none.
fn id_of<const N: usize>(v: &Bound<'_, PyAny>) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if let Ok(s) = v.cast::<PyString>() {
        let hex = utf8(s)?.as_bytes();
        if hex.len() != N * 2 {
            return None;
        }
        for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            *o = (hi << 4 | lo) as u8;
        }
    } else if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() {
        let n: u128 = v.extract().ok()?;
        let bytes = n.to_be_bytes();
        if N < 16 && bytes[..16 - N].iter().any(|&b| b != 0) {
            return None;
        }
        out.copy_from_slice(&bytes[16 - N..]);
    } else {
        return None;
    }
    out.iter().any(|&b| b != 0).then_some(out)
}

/// The held fields as ring fields, their strings borrowed from `texts`
/// (the first `held.len()` of `fields` are set, at most all of them).
#[inline]
fn fill_fields<'a>(
    fields: &mut [Field<'a>; MAX_FIELDS],
    held: &[(usize, Held)],
    texts: &[&'a str],
) {
    for (f, (k, v)) in fields.iter_mut().zip(held) {
        *f = Field {
            key: texts[*k],
            value: match *v {
                Held::Str(i) => Value::Str(texts[i]),
                Held::I64(i) => Value::I64(i),
                Held::U64(u) => Value::U64(u),
                Held::F64(x) => Value::F64(x),
                Held::Bool(b) => Value::Bool(b),
            },
        };
    }
}

/// Trace id, span id and trace flags of one record.
type TraceContext = (Option<[u8; 16]>, Option<[u8; 8]>, u8);

/// A field value kept alive for the duration of one emit.
enum Held {
    Str(usize),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl Producer {
    /// The traceback as the `exception` field, when the record carries one
    /// (`exc_info`, `stack_info` or `exc_text`), formatted as `logging` does.
    #[inline]
    fn exception_field<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'py, PyAny>,
        dict: &Bound<'py, PyDict>,
        keep: &mut Vec<Bound<'py, PyString>>,
        held: &mut Vec<(usize, Held)>,
    ) -> PyResult<()> {
        let truthy = |k: &Bound<'py, PyString>| -> PyResult<bool> {
            Ok(match dict.get_item(k)? {
                Some(v) => v.is_truthy()?,
                None => false,
            })
        };
        if truthy(intern!(py, "exc_info"))?
            || truthy(intern!(py, "stack_info"))?
            || truthy(intern!(py, "exc_text"))?
        {
            let tb = self.format_exc.bind(py).call1((record,))?;
            let key = keep_text(intern!(py, "exception").as_any(), keep)?;
            held.push((key, Held::Str(keep_text(&tb, keep)?)));
        }
        Ok(())
    }

    /// Writes `event` into the ring (without the GIL when so configured):
    /// true when written, false when the overflow policy dropped it (counted
    /// by the ring), `LogbusError` when it is lost otherwise.
    #[inline]
    fn send(&self, py: Python<'_>, event: &Event<'_>) -> PyResult<bool> {
        let outcome = if self.release_gil {
            py.detach(|| self.inner.emit(event))
        } else {
            self.inner.emit(event)
        };
        match outcome {
            Outcome::Written { .. } => Ok(true),
            Outcome::Dropped => Ok(false),
            other => Err(LogbusError::new_err(format!("record lost: {other:?}"))),
        }
    }

    /// The trace context of the record (`trace_id`/`span_id` attributes, as a
    /// filter sets them, or OpenTelemetry's `otelTraceID`/`otelSpanID`), when
    /// `extended` (the record has more attributes than a plain one); else of
    /// the current OpenTelemetry span.
    fn trace_context(
        &self,
        py: Python<'_>,
        dict: &Bound<'_, PyDict>,
        extended: bool,
    ) -> PyResult<TraceContext> {
        if extended {
            for (t, s) in [
                (intern!(py, "trace_id"), intern!(py, "span_id")),
                (intern!(py, "otelTraceID"), intern!(py, "otelSpanID")),
            ] {
                if let Some(t) = dict.get_item(t)? {
                    let trace = id_of::<16>(&t);
                    let span = match dict.get_item(s)? {
                        Some(s) if trace.is_some() => id_of::<8>(&s),
                        _ => None,
                    };
                    // Set by a filter: all-zero ids mean "no span", not "ask OTel".
                    return Ok((trace, span, u8::from(trace.is_some())));
                }
            }
        }
        let span = match (&self.span_var, &self.get_span) {
            // Fast path: OpenTelemetry's context is a dict in a ContextVar; no
            // span in it (the common case) costs one C call and one lookup.
            (Some((var, key)), _) => {
                let ctx = var.bind(py).call_method0(intern!(py, "get"))?;
                match ctx.cast::<PyDict>() {
                    Ok(ctx) => match ctx.get_item(key.bind(py))? {
                        Some(span) => span,
                        None => return Ok((None, None, 0)),
                    },
                    Err(_) => match &self.get_span {
                        Some(get) => get.bind(py).call0()?,
                        None => return Ok((None, None, 0)),
                    },
                }
            }
            (None, Some(get)) => get.bind(py).call0()?,
            (None, None) => return Ok((None, None, 0)),
        };
        let ctx = span.call_method0(intern!(py, "get_span_context"))?;
        if !ctx.getattr(intern!(py, "is_valid"))?.is_truthy()? {
            return Ok((None, None, 0));
        }
        let trace = id_of::<16>(&ctx.getattr(intern!(py, "trace_id"))?);
        let span = id_of::<8>(&ctx.getattr(intern!(py, "span_id"))?);
        let flags: u8 = ctx
            .getattr(intern!(py, "trace_flags"))?
            .extract()
            .unwrap_or(0);
        Ok((trace, span, if trace.is_some() { flags } else { 0 }))
    }

    /// `record.getMessage()`: done here (`msg % args`) for a plain
    /// `LogRecord` with a `str` message, else by calling the method.
    fn message<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'py, PyAny>,
        dict: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyString>> {
        if record.get_type().is(self.record_type.bind(py)) {
            if let Some(msg) = dict.get_item(intern!(py, "msg"))? {
                if let Ok(msg) = msg.cast_exact::<PyString>() {
                    return match dict.get_item(intern!(py, "args"))? {
                        Some(args) if args.is_truthy()? => to_text(msg.rem(args)?),
                        _ => Ok(msg.clone()),
                    };
                }
            }
        }
        to_text(record.call_method0(intern!(py, "getMessage"))?)
    }

    /// `extra` attributes (not those of a plain record) as fields.
    fn extra_fields<'py>(
        &self,
        py: Python<'py>,
        dict: &Bound<'py, PyDict>,
        keep: &mut Vec<Bound<'py, PyString>>,
        held: &mut Vec<(usize, Held)>,
    ) -> PyResult<()> {
        let std_keys = self.std_keys.bind(py);
        for (k, v) in dict.iter() {
            if held.len() == MAX_FIELDS - 1 {
                break; // keep room for the traceback
            }
            if std_keys.contains(&k)? {
                continue;
            }
            let key = keep_text(&k, keep)?;
            let value = if let Ok(b) = v.cast::<PyBool>() {
                Held::Bool(b.is_true())
            } else if v.is_instance_of::<PyInt>() {
                match v.extract::<i64>() {
                    Ok(i) => Held::I64(i),
                    Err(_) => match v.extract::<u64>() {
                        Ok(u) => Held::U64(u),
                        Err(_) => Held::Str(keep_text(v.repr()?.as_any(), keep)?),
                    },
                }
            } else if let Ok(f) = v.cast::<PyFloat>() {
                Held::F64(f.value())
            } else if v.is_instance_of::<PyString>() {
                Held::Str(keep_text(&v, keep)?)
            } else {
                Held::Str(keep_text(v.repr()?.as_any(), keep)?)
            };
            held.push((key, value));
        }
        Ok(())
    }
}

#[pymethods]
impl Producer {
    #[new]
    #[pyo3(signature = (ring, service, std_keys, format_exc, get_span=None, span_var=None, release_gil=false, handler=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ring: Option<PathBuf>,
        service: Option<String>,
        std_keys: Bound<'_, PyFrozenSet>,
        format_exc: Py<PyAny>,
        get_span: Option<Py<PyAny>>,
        span_var: Option<(Py<PyAny>, Py<PyAny>)>,
        release_gil: bool,
        handler: Option<(Py<PyAny>, Py<PyList>, Py<PyAny>)>,
    ) -> PyResult<Producer> {
        let mut builder = Builder::new();
        if let Some(ring) = ring {
            builder = builder.ring_path(ring);
        }
        if let Some(service) = service {
            builder = builder.service_name(service);
        }
        let inner = builder
            .producer()
            .map_err(|e| LogbusError::new_err(e.to_string()))?;
        let logging = py.import("logging")?;
        let record_type = logging.getattr("LogRecord")?.cast_into::<PyType>()?;
        // A plain record's attribute count: more means `extra` (or a filter's) attributes.
        let plain = record_type.call1(("", 0, "", 0, "", PyTuple::empty(py), py.None()))?;
        let std_len = plain.getattr("__dict__")?.len()?;
        Ok(Producer {
            inner,
            std_keys: std_keys.unbind(),
            std_len,
            record_type: record_type.unbind(),
            format_exc,
            get_span,
            span_var,
            release_gil,
            handler,
        })
    }

    /// The ring file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// The service name written into the ring's resource table.
    #[getter]
    fn service(&self) -> &str {
        self.inner.service()
    }

    /// `logging.Handler.handle` without a Python frame: the handler's filters
    /// (if any), then [`Producer::emit`]; a failure goes to the handler's
    /// `handleError` (RecursionError propagates, as in `logging`). Returns
    /// what `handle` returns: the (possibly filter-replaced) record, or the
    /// filters' falsy verdict.
    fn handle<'py>(
        &self,
        py: Python<'py>,
        record: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some((handler, filters, report)) = &self.handler else {
            return Err(LogbusError::new_err("this Producer belongs to no handler"));
        };
        let mut record = record;
        if !filters.bind(py).is_empty() {
            let h = handler.bind(py).call0()?;
            if h.is_none() {
                return Ok(record);
            }
            let rv = h.call_method1(intern!(py, "filter"), (&record,))?;
            if !rv.is_truthy()? {
                return Ok(rv);
            }
            if rv.is_instance(self.record_type.bind(py))? {
                record = rv; // Python 3.12 filters may return a replacement
            }
        }
        if let Err(e) = self.emit(py, &record) {
            if e.is_instance_of::<PyRecursionError>(py) {
                return Err(e);
            }
            report
                .bind(py)
                .call1((handler.bind(py), &record, e.value(py)))?;
        }
        Ok(record)
    }

    /// Writes one `logging.LogRecord`. Returns True when it is in the ring,
    /// False when the ring's overflow policy dropped it (counted by the ring).
    ///
    /// Raises `LogbusError` when the record is lost otherwise, and whatever
    /// the record's own `getMessage()` or `str()` of a field raises.
    fn emit<'py>(&self, py: Python<'py>, record: &Bound<'py, PyAny>) -> PyResult<bool> {
        let dict = record
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()?;
        let get = |k: &Bound<'py, PyString>| dict.get_item(k);
        let levelno: i64 = match get(intern!(py, "levelno"))? {
            Some(l) => l.extract().unwrap_or(0),
            None => 0,
        };
        let name = match get(intern!(py, "name"))? {
            Some(n) => to_text(n)?,
            None => PyString::intern(py, ""),
        };
        // The message, as record.getMessage() makes it, on the caller's thread.
        let msg = self.message(py, record, &dict)?;

        // More attributes than a plain record: `extra` ones, or a filter's.
        let extended = dict.len() > self.std_len;
        let mut keep: Vec<Bound<'py, PyString>> = Vec::new();
        let mut held: Vec<(usize, Held)> = Vec::new();
        if extended {
            self.extra_fields(py, &dict, &mut keep, &mut held)?;
        }
        self.exception_field(py, record, &dict, &mut keep, &mut held)?;
        let (trace_id, span_id, trace_flags) = self.trace_context(py, &dict, extended)?;

        // Borrow every string (lossy only for lone surrogates).
        let (mut s_name, mut s_msg) = (None, None);
        let target = lossy(&name, &mut s_name);
        let message = lossy(&msg, &mut s_msg);
        let mut scratch: Vec<Option<String>> = Vec::new();
        scratch.resize_with(keep.len(), || None);
        let texts: Vec<&str> = keep
            .iter()
            .zip(scratch.iter_mut())
            .map(|(s, sc)| lossy(s, sc))
            .collect();
        let mut fields = [Field {
            key: "",
            value: Value::Bool(false),
        }; MAX_FIELDS];
        fill_fields(&mut fields, &held, &texts);
        let event = Event {
            severity: severity_of(levelno),
            time_ns: 0,
            target,
            message,
            fields: &fields[..held.len().min(MAX_FIELDS)],
            trace_id,
            span_id,
            trace_flags,
        };
        self.send(py, &event)
    }
}

/// OpenTelemetry severity number of a `logging` level number.
#[pyfunction]
fn severity(levelno: i64) -> u8 {
    severity_of(levelno)
}

#[pymodule]
fn _logbus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Producer>()?;
    m.add_function(wrap_pyfunction!(severity, m)?)?;
    m.add("LogbusError", m.py().get_type::<LogbusError>())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::severity_of;

    #[test]
    fn levels_map_to_otel_severities() {
        for (levelno, sev) in [
            (10, 5),
            (20, 9),
            (30, 13),
            (40, 17),
            (50, 21),
            (0, 1),
            (5, 3),
            (25, 11),
            (60, 24),
            (-3, 1),
        ] {
            assert_eq!(severity_of(levelno), sev, "levelno {levelno}");
        }
    }
}
