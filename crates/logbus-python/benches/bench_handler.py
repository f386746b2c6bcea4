"""Cost per logging call on the caller's thread:

    logger.info("request %d handled", i)

through logbus.Handler, through QueueHandler + QueueListener (the listener
writes to a StreamHandler on /dev/null, on its own thread, as in a real
set-up), and through a NullHandler (the floor: Python's own logging
machinery, findCaller and LogRecord included, with no handler work).

Runs are interleaved (every variant once per round, order rotated). The
logbus variants share one ring (16 MiB, the default): a lap is written
and drained first, so that its pages are mapped as in a running system, and
it is drained with `logbus drain` after every run (untimed), so no record is
dropped. Prints the median ns per call of each variant over the rounds and
the ratios.

    python benches/bench_handler.py [--calls 40000] [--rounds 9] [--logbus-bin PATH]
"""

import argparse
import logging
import logging.handlers
import os
import queue
import statistics
import subprocess
import sys
import time
import uuid
import weakref
from pathlib import Path

import logbus
from logbus import _logbus

REPO = Path(__file__).resolve().parents[3]


def make_ring(bin_path):
    path = Path("/dev/shm") / f"logbus-pybench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # The default ring (16 MiB): a run's records fit below the INFO watermark.
    subprocess.run([bin_path, "create", str(path)],
                   check=True, stdout=subprocess.DEVNULL)
    return path


def drain(bin_path, ring):
    subprocess.run([bin_path, "drain", str(ring)], check=True, stdout=subprocess.DEVNULL)


def warm(bin_path, ring):
    """Writes 2 x 32,768 records, drained after each half, so the ring's pages are mapped."""
    h = logbus.Handler(ring)
    rec = logging.LogRecord("warm", logging.INFO, __file__, 0, "warm-up", (), None)
    for _ in range(2):
        for _ in range(32768):
            h.handle(rec)
        drain(bin_path, ring)
    h.close()


def logbus_variant(otel=True, release_gil=False):
    def setup(ring):
        h = logbus.Handler(ring, service="bench")
        if not otel or release_gil:
            get_span, span_var = logbus._otel_span_lookup() if otel else (None, None)
            p = _logbus.Producer(str(ring), "bench", logbus._STD_KEYS, logbus._format_exc,
                                 get_span, span_var, release_gil,
                                 (weakref.ref(h), h.filters, logbus._report))
            h._producer, h._write, h.handle = p, p.emit, p.handle
        return h, lambda: None
    return setup


def queue_variant(ring):
    q = queue.Queue(-1)
    sink = logging.StreamHandler(open(os.devnull, "w"))
    listener = logging.handlers.QueueListener(q, sink)
    listener.start()

    def teardown():
        listener.stop()
        sink.stream.close()
    return logging.handlers.QueueHandler(q), teardown


def null_variant(ring):
    return logging.NullHandler(), lambda: None


VARIANTS = {
    "logbus.Handler": logbus_variant(otel=True),
    "logbus.Handler, no OTel lookup": logbus_variant(otel=False),
    "logbus.Handler, GIL released": logbus_variant(otel=False, release_gil=True),
    "QueueHandler+QueueListener": queue_variant,
    "NullHandler": null_variant,
}


def run(setup, calls, bin_path, ring):
    logger = logging.getLogger("bench")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler, teardown = setup(ring)
    logger.addHandler(handler)
    try:
        info = logger.info
        for i in range(500):  # warm-up (the thread opens its writer)
            info("request %d handled", i)
        t0 = time.perf_counter_ns()
        for i in range(calls):
            info("request %d handled", i)
        elapsed = time.perf_counter_ns() - t0
    finally:
        logger.removeHandler(handler)
        teardown()
        handler.close()
        drain(bin_path, ring)
    return elapsed / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the parts of one call (timeit, best of 5)")
    ap.add_argument("--logbus-bin", default=os.environ.get("LOGBUS_BIN",
                                                           str(REPO / "target/release/logbus")))
    args = ap.parse_args()
    names = list(VARIANTS)
    results = {n: [] for n in names}
    ring = make_ring(args.logbus_bin)
    try:
        warm(args.logbus_bin, ring)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                results[n].append(run(VARIANTS[n], args.calls, args.logbus_bin, ring))
    finally:
        for p in ring.parent.glob(ring.name + "*"):
            p.unlink()
    med = {n: statistics.median(v) for n, v in results.items()}
    print(f"Python {sys.version.split()[0]}, {args.calls} calls x {args.rounds} interleaved rounds; "
          f"median ns per logger.info call (min-max over rounds)")
    for n in names:
        print(f"  {n:34} {med[n]:8.0f}   ({min(results[n]):.0f}-{max(results[n]):.0f})")
    lb, qh, nh = med["logbus.Handler"], med["QueueHandler+QueueListener"], med["NullHandler"]
    lb2 = med["logbus.Handler, no OTel lookup"]
    print(f"  QueueHandler path / logbus.Handler:          {qh / lb:5.2f}x  (goal >= 3)")
    print(f"  logbus.Handler / NullHandler floor:          {lb / nh:5.2f}x  (goal <= 1.5)")
    print(f"  QueueHandler path / logbus (no OTel lookup): {qh / lb2:5.2f}x")
    print(f"  logbus (no OTel lookup) / NullHandler:       {lb2 / nh:5.2f}x")
    if args.breakdown:
        breakdown(args.logbus_bin)


def breakdown(bin_path):
    """ns of the parts of one call, each timed alone on a prepared record."""
    import timeit
    ring = make_ring(bin_path)
    try:
        warm(bin_path, ring)
        logger = logging.getLogger("bench")
        rec = logger.makeRecord("bench", logging.INFO, __file__, 1, "request %d handled", (7,), None)
        h = logbus.Handler(ring)
        qh = logging.handlers.QueueHandler(queue.SimpleQueue())
        qh2 = logging.handlers.QueueHandler(queue.Queue(-1))
        parts = {
            "logger.info, logger disabled for INFO (call + level check)":
                ("logger.info('request %d handled', 7)", {"logger": _disabled_logger()}),
            "Logger.findCaller()": ("logger.findCaller()", {"logger": logger}),
            "Logger.makeRecord() (LogRecord.__init__)":
                ("logger.makeRecord('bench', 20, 'f.py', 1, 'request %d handled', (7,), None)",
                 {"logger": logger}),
            "record.getMessage()": ("rec.getMessage()", {"rec": rec}),
            "logbus.Handler.handle(record)": ("h.handle(rec)", {"h": h, "rec": rec}),
            "  of which the native emit": ("w(rec)", {"w": h._write, "rec": rec}),
            "QueueHandler.prepare(record)": ("qh.prepare(rec)", {"qh": qh, "rec": rec}),
            "queue.Queue.put_nowait (no consumer)": ("put(rec)", {"put": qh2.queue.put_nowait, "rec": rec}),
        }
        n = 8000  # x 5 repeats: 40,000 records, within the ring between drains
        print(f"parts of one call (timeit, {n} calls, best of 5; ring drained between parts):")
        for name, (stmt, g) in parts.items():
            ns = min(timeit.repeat(stmt, globals=g, number=n, repeat=5)) / n * 1e9
            print(f"  {name:60} {ns:7.0f} ns")
            drain(bin_path, ring)
    finally:
        for p in ring.parent.glob(ring.name + "*"):
            p.unlink()


def _disabled_logger():
    lg = logging.getLogger("bench.disabled")
    lg.setLevel(logging.WARNING)
    return lg


if __name__ == "__main__":
    main()
