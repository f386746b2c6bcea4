"""logbus.Handler end to end: real logging calls, real processes (fork,
multiprocessing, subprocesses), records read back with `logbus dump`."""

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import weakref

import pytest

import logbus

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def log(ring, request):
    """A logger named after the test, with only a logbus.Handler on it."""
    logger = logging.getLogger(f"t.{request.node.name}")
    logger.propagate = False
    logger.setLevel(1)
    handler = logbus.Handler(ring.path, service="pytest")
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)
    handler.close()


def test_levels_map_to_otel_severity(ring, log):
    logging.addLevelName(25, "NOTICE")
    for level in (10, 20, 30, 40, 50, 25, 5, 1):
        log.log(level, "level %d", level)
    got = {r["msg"]: r["severity"] for r in ring.records(log.name)}
    assert got == {"level 10": 5, "level 20": 9, "level 30": 13, "level 40": 17,
                   "level 50": 21, "level 25": 11, "level 5": 3, "level 1": 1}
    assert [logbus.severity(n) for n in (10, 20, 30, 40, 50)] == [5, 9, 13, 17, 21]


def test_target_message_and_service(ring, log):
    args = ["first"]
    log.info("got %s and %d%%", args, 7)
    args.append("mutated after the call")  # formatting happened on the caller's thread
    log.info("no args: %s stays")
    (a, b) = ring.records(log.name)
    assert a["target"] == log.name
    assert a["msg"] == "got ['first'] and 7%"
    assert b["msg"] == "no args: %s stays"
    assert a["service"] == "pytest"
    assert a["pid"] == os.getpid()


def test_extra_fields_keep_their_types(ring, log):
    class Thing:
        def __repr__(self):
            return "<thing>"

    log.warning("typed", extra={"user": "ann", "items": 3, "neg": -4, "big": 2**64 - 1,
                                "huge": 2**80, "ratio": 0.5, "ok": True, "no": False,
                                "thing": Thing(), "none": None, "uni": "h\u00e9\u20ac"})
    (r,) = ring.records(log.name)
    assert r["fields"] == {"user": "ann", "items": 3, "neg": -4, "big": 2**64 - 1,
                           "huge": str(2**80), "ratio": 0.5, "ok": True, "no": False,
                           "thing": "<thing>", "none": "None", "uni": "h\u00e9\u20ac"}


def test_exception_and_stack_become_one_field_and_one_line(ring, log):
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        log.exception("failed")
    log.error("with stack", stack_info=True)
    failed, stacked = ring.records(log.name)
    assert failed["severity"] == 17
    tb = failed["fields"]["exception"]
    assert tb.startswith("Traceback (most recent call last):")
    assert "ValueError: bad\nvalue" in tb and tb.count("\n") >= 3
    assert stacked["fields"]["exception"].startswith("Stack (most recent call last):")
    # One line per record in both formats, newlines escaped.
    assert len(ring.dump(json_lines=True)) == 2
    text = ring.dump(json_lines=False).splitlines()
    assert len(text) == 2, text
    assert "failed" in text[0] and "ValueError: bad\\nvalue" in text[0]


def test_trace_ids_from_a_filter(ring, log):
    class TraceFilter(logging.Filter):
        ids = (TRACE, SPAN)

        def filter(self, record):
            record.trace_id, record.span_id = self.ids
            return True

    f = TraceFilter()
    log.handlers[0].addFilter(f)
    log.info("traced")
    f.ids = ("0" * 32, "0" * 16)  # all-zero: no span
    log.info("untraced")
    traced, untraced = ring.records(log.name)
    assert (traced["trace_id"], traced["span_id"]) == (TRACE, SPAN)
    assert "trace_id" not in untraced and "span_id" not in untraced
    assert "fields" not in traced, "trace ids are not fields"


@pytest.mark.parametrize("lookup", ["context variable", "get_current_span"])
def test_trace_ids_from_the_current_opentelemetry_span(ring, log, lookup):
    trace = pytest.importorskip("opentelemetry.trace")
    handler = log.handlers[0]
    get_span, span_var = logbus._otel_span_lookup()
    assert span_var is not None, "the fast lookup applies to this opentelemetry-api"
    if lookup == "get_current_span":  # the public API, used when the internals differ
        p = logbus.Producer(str(ring.path), "pytest", logbus._STD_KEYS, logbus._format_exc,
                            get_span, None, False,
                            (weakref.ref(handler), handler.filters, logbus._report))
        handler._producer, handler._write, handler.handle = p, p.emit, p.handle
    ctx = trace.SpanContext(trace_id=int(TRACE, 16), span_id=int(SPAN, 16), is_remote=False,
                            trace_flags=trace.TraceFlags(1))
    with trace.use_span(trace.NonRecordingSpan(ctx)):
        log.info("in span")
    log.info("no span")
    with trace.use_span(trace.INVALID_SPAN):
        log.info("invalid span")
    in_span, no_span, invalid = ring.records(log.name)
    assert (in_span["trace_id"], in_span["span_id"]) == (TRACE, SPAN)
    assert "trace_id" not in no_span and "trace_id" not in invalid


def test_emit_never_raises(ring, log):
    errors = []

    class Catching(logbus.Handler):
        def handleError(self, record):
            errors.append(record.msg)

    h = Catching(ring.path)
    log.addHandler(h)
    try:
        log.info("%d needs a number", "text")  # getMessage() raises TypeError
    finally:
        log.removeHandler(h)
    assert errors == ["%d needs a number"]
    h.flush()
    h.close()


def test_open_error_is_a_logbus_error(tmp_path):
    with pytest.raises(logbus.LogbusError):
        logbus.Handler(tmp_path / "no" / "such" / "dir" / "ring")


def test_threads_write_under_their_own_tid(ring, log):
    def work(n):
        for i in range(100):
            log.info("thread %d record %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = ring.records(log.name)
    assert len(recs) == 400
    assert len({r["tid"] for r in recs}) == 4


def test_pid_after_os_fork(ring, log):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: log through the parent's handler
        code = 0
        try:
            log.info("from the child")
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    log.info("from the parent")
    got = {rec["msg"]: rec["pid"] for rec in ring.records(log.name)}
    assert got == {"from the child": pid, "from the parent": os.getpid()}


def _worker(args):
    name, n = args
    logging.getLogger(name).info("worker %d", n)
    return os.getpid()


def _spawned(ring_path, name, n):
    logger = logging.getLogger(name)
    logger.addHandler(logbus.Handler(ring_path, service="spawned"))
    logger.setLevel(logging.INFO)
    logger.info("spawned %d", n)


def test_pid_with_multiprocessing_fork(ring, log):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pids = pool.map(_worker, [(log.name, n) for n in range(8)])
    recs = ring.records(log.name)
    assert sorted(r["msg"] for r in recs) == sorted(f"worker {n}" for n in range(8))
    assert [r["pid"] for r in sorted(recs, key=lambda r: int(r["msg"].split()[1]))] == pids
    assert os.getpid() not in pids


def test_pid_with_multiprocessing_spawn(ring):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spawned, args=(str(ring.path), "t.spawn", n)) for n in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    recs = ring.records("t.spawn")
    assert {r["pid"] for r in recs} == {p.pid for p in procs}
    assert {r["service"] for r in recs} == {"spawned"}


def test_default_ring_and_service_from_the_environment(ring):
    code = ("import logging, logbus; h = logbus.Handler(); "
            "logging.basicConfig(level=logging.INFO, handlers=[h]); "
            "logging.getLogger('t.env').info('from env'); print(h.ring)")
    env = dict(os.environ, LOGBUS_RING=str(ring.path), OTEL_SERVICE_NAME="env-service")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == str(ring.path)
    (r,) = ring.records("t.env")
    assert r["service"] == "env-service" and r["msg"] == "from env"


def test_filters_and_subclasses(ring, log):
    handler = log.handlers[0]
    assert handler.handle == handler._producer.handle, "native handle in use"
    handler.addFilter(lambda r: r.msg != "dropped by filter")
    log.info("dropped by filter")
    log.info("kept")
    handler.filters = [lambda r: False]  # assignment keeps working
    log.info("dropped by the assigned filter")
    handler.filters = []
    log.info("kept again")

    class Upper(logbus.Handler):
        def emit(self, record):  # an override: the Python path runs it
            record.msg = record.msg.upper()
            super().emit(record)

    up = Upper(ring.path)
    assert "handle" not in up.__dict__
    log.removeHandler(handler)
    log.addHandler(up)
    try:
        log.info("through a subclass")
    finally:
        log.removeHandler(up)
        log.addHandler(handler)
    assert [r["msg"] for r in ring.records(log.name)] == ["kept", "kept again",
                                                          "THROUGH A SUBCLASS"]
