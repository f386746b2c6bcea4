"""Cost per logging call on the caller's thread:

    logger.info("request %d handled", i)

through logbus.Handler, through QueueHandler + QueueListener (the listener
writes to a StreamHandler on /dev/null, on its own thread, as in a real
set-up), and through a NullHandler (the floor: Python's own logging
machinery, findCaller and LogRecord included, with no handler work).

Runs are interleaved (every variant once per round, order rotated), each on a
fresh ring big enough that no record is dropped; prints the median ns per call
of each variant over the rounds and the ratios.

    python benches/bench_handler.py [--calls 100000] [--rounds 9] [--logbus-bin PATH]
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
from pathlib import Path

import logbus
from logbus import _logbus

REPO = Path(__file__).resolve().parents[3]


def make_ring(bin_path):
    path = Path("/dev/shm") / f"logbus-pybench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # 262144 slots per lane: a single thread's 100k INFO records fit (INFO may fill 3/4).
    subprocess.run([bin_path, "create", "--slots", "524288", "--lanes", "2", str(path)],
                   check=True)
    return path


def logbus_variant(otel=True, release_gil=False):
    def setup(ring):
        h = logbus.Handler(ring, service="bench")
        if not otel or release_gil:
            get_span, span_var = logbus._otel_span_lookup() if otel else (None, None)
            p = _logbus.Producer(str(ring), "bench", logbus._STD_KEYS, logbus._format_exc,
                                 get_span, span_var, release_gil)
            h._producer, h._write = p, p.emit
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


def run(setup, calls, bin_path):
    ring = make_ring(bin_path)
    logger = logging.getLogger("bench")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler, teardown = setup(ring)
    logger.addHandler(handler)
    try:
        info = logger.info
        for i in range(1000):  # warm-up (the thread takes its lane)
            info("request %d handled", i)
        t0 = time.perf_counter_ns()
        for i in range(calls):
            info("request %d handled", i)
        elapsed = time.perf_counter_ns() - t0
    finally:
        logger.removeHandler(handler)
        teardown()
        handler.close()
        for p in ring.parent.glob(ring.name + "*"):
            p.unlink()
    return elapsed / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--logbus-bin", default=os.environ.get("LOGBUS_BIN",
                                                           str(REPO / "target/release/logbus")))
    args = ap.parse_args()
    names = list(VARIANTS)
    results = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            results[n].append(run(VARIANTS[n], args.calls, args.logbus_bin))
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


if __name__ == "__main__":
    main()
