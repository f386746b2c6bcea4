"""Python's QueueHandler/QueueListener pattern, with logbus.Handler in their place.

The classic set-up puts a QueueHandler on the root logger and a QueueListener
thread that drains the queue into a console handler (JSON, INFO and above)
and an errors.log file handler (text, ERROR and above). Here the one
logbus.Handler writes each record straight into the shared-memory ring, and
the routing moves to the collector (examples/collector.toml):

    logbus-collector --config examples/collector.toml &   # stdout JSON >= INFO, errors.log >= ERROR
    python examples/seed_example.py

Nothing to start or stop in this process, nothing lost if it dies: a record is
in the ring when the logging call returns.
"""

import contextvars
import logging
import multiprocessing
import secrets
from concurrent.futures import ThreadPoolExecutor

import logbus

# The current request's trace context (what OpenTelemetry keeps for a real span).
_trace = contextvars.ContextVar("trace", default=("0" * 32, "0" * 16))


class OTelTraceFilter(logging.Filter):
    """Puts the current trace context on each record as hex ids, all zeros
    outside a request (as OpenTelemetry's logging instrumentation does)."""

    def filter(self, record):
        record.trace_id, record.span_id = _trace.get()
        return True


def setup_logging():
    """Step 1, configuration: was QueueHandler + QueueListener(console, errors.log)."""
    handler = logbus.Handler(service="seed-example")
    handler.addFilter(OTelTraceFilter())
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    # No listener.start() / listener.stop(): the collector does the I/O.


def charge(order, amount):
    if amount > 90:
        raise ValueError(f"card declined for order {order}: amount {amount} over limit")


def handle_request(i):
    """Step 2, worker logging with extra fields inside a trace."""
    log = logging.getLogger("shop.worker")
    token = _trace.set((secrets.token_hex(16), secrets.token_hex(8)))
    try:
        log.debug("request %d received", i)
        amount = 40 + i * 13 % 60
        try:
            charge(i, amount)
            log.info("request %d handled", i, extra={"order": i, "amount": float(amount),
                                                      "user": f"user{i % 3}", "express": i % 2 == 0})
        except ValueError:
            # Step 3, an exception: the traceback travels as the `exception` field.
            log.exception("payment failed", extra={"order": i, "amount": float(amount)})
    finally:
        _trace.reset(token)


def batch_job(n):
    """A worker process (multiprocessing, fork): logs under its own pid."""
    logging.getLogger("shop.batch").info("batch %d done", n, extra={"rows": n * 100})
    return n


def main():
    setup_logging()
    log = logging.getLogger("shop")
    log.info("starting", extra={"workers": 4})
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(handle_request, range(8)))
    with multiprocessing.get_context("fork").Pool(2) as procs:
        procs.map(batch_job, range(2))
    log.warning("shutting down")


if __name__ == "__main__":
    main()
