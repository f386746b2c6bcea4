"""logbus for Python: a ``logging.Handler`` that writes into a logbus ring.

    import logging, logbus
    logging.basicConfig(level=logging.INFO, handlers=[logbus.Handler()])
    log = logging.getLogger("shop")
    log.info("order %s placed", 42, extra={"user": "ann", "items": 3})
    log.exception("payment failed")   # inside an except block: traceback as a field

Each record goes straight into the shared-memory ring (``$LOGBUS_RING``, else
``/dev/shm/logbus``) on the caller's thread: nothing is queued or buffered in
the process, so there is no listener thread to start or stop, and a record
is safe the moment the logging call returns. The ``logbus-collector`` process
does the formatting and I/O (stdout, files, OTLP).
"""

import contextvars
import logging
import weakref

from ._logbus import LogbusError, Producer, severity

__all__ = ["Handler", "LogbusError", "severity"]

# Attributes of a plain LogRecord, and those logging itself adds later
# (Formatter.format sets message/asctime; 3.12 adds taskName): never fields.
_STD_KEYS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "trace_id", "span_id", "trace_flags",
       "otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName"}
)

_formatter = logging.Formatter()


def _format_exc(record):
    """The traceback (exc_info) and stack (stack_info) text of a record."""
    parts = []
    if record.exc_info:
        parts.append(_formatter.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(_formatter.formatStack(record.stack_info))
    return "\n".join(parts)


def _report(handler_ref, record, exc):
    """Hands a failed emit to the handler's handleError, inside an except block
    (handleError prints sys.exc_info())."""
    handler = handler_ref()
    if handler is None:
        return
    try:
        raise exc
    except Exception:
        handler.handleError(record)


def _otel_span_lookup():
    """``(get_current_span, (ContextVar, span key) or None)``, or ``(None, None)``
    without opentelemetry-api. The second is a faster way to the same span,
    used only when OpenTelemetry's runtime context is the default one (a
    ``Context`` dict in a ``ContextVar``); else the public function is used."""
    try:
        from opentelemetry import context, trace
    except ImportError:
        return None, None
    fast = None
    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
        from opentelemetry.trace.propagation import _SPAN_KEY

        runtime = getattr(context, "_RUNTIME_CONTEXT", None)
        var = getattr(runtime, "_current_context", None)
        if type(runtime) is ContextVarsRuntimeContext and isinstance(var, contextvars.ContextVar):
            fast = (var, _SPAN_KEY)
    except Exception:  # another OpenTelemetry version's internals: use the public API
        fast = None
    return trace.get_current_span, fast


class Handler(logging.Handler):
    """A ``logging.Handler`` writing each record into a logbus ring.

    ``ring``: path of the ring (``None``: ``$LOGBUS_RING``, else
    ``/dev/shm/logbus``; created with default geometry if missing).
    ``service``: ``service.name`` of this process (``None``:
    ``$OTEL_SERVICE_NAME``, else the executable's name).

    What a record carries: severity (DEBUG 5, INFO 9, WARNING 13, ERROR 17,
    CRITICAL 21; other levels on the same scale), logger name as target,
    ``record.getMessage()``, ``extra`` attributes as typed fields (str, int,
    float, bool; anything else as its ``repr``), the traceback of
    ``exc_info``/``stack_info`` as an ``exception`` field, the trace context
    (``record.trace_id``/``record.span_id`` in hex as a filter sets them, all
    zero meaning none; else the current OpenTelemetry span when
    ``opentelemetry-api`` is installed), and the pid of the process that
    logged it (also after ``os.fork()`` and in ``multiprocessing`` children).

    ``emit`` never blocks and never raises: a failure goes to
    ``handleError``; a record refused by the ring's overflow policy is
    counted by the ring. ``flush`` and ``close`` have nothing to do.

    Raises ``LogbusError`` when the ring cannot be opened or created.
    """

    def __init__(self, ring=None, *, service=None, level=logging.NOTSET):
        super().__init__(level)
        get_span, span_var = _otel_span_lookup()
        self._producer = Producer(
            None if ring is None else str(ring),
            service,
            _STD_KEYS,
            _format_exc,
            get_span,
            span_var,
            False,
            (weakref.ref(self), self.filters, _report),
        )
        self._write = self._producer.emit
        cls = type(self)
        if (cls.handle is logging.Handler.handle and cls.emit is Handler.emit
                and cls.filter is logging.Filterer.filter):
            # logging.Handler.handle's steps (filters, emit, handleError) in
            # native code, without the handler lock (writing to the ring is
            # thread-safe and lock-free) and without a Python frame per
            # record. Subclasses that override handle, emit or filter get
            # logging's own handle, lock included.
            self.handle = self._producer.handle

    # The native handle reads the filters list it was given: keep that one
    # list object even when `handler.filters` is assigned.
    @property
    def filters(self):
        return self.__dict__["_filters"]

    @filters.setter
    def filters(self, value):
        current = self.__dict__.get("_filters")
        if current is None:
            self.__dict__["_filters"] = list(value)
        else:
            current[:] = value

    @property
    def ring(self):
        """Path of the ring file."""
        return self._producer.path

    @property
    def service(self):
        """``service.name`` written for this process."""
        return self._producer.service

    def emit(self, record):
        try:
            self._write(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self):
        """Nothing is buffered in the process."""

    def __repr__(self):
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.ring} ({level})>"
