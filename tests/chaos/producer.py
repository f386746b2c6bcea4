"""The Python producer of the chaos harness (logbus-chaos; tests/src/chaos/).

    python producer.py RING LEDGER NAME THREADS SEED MAX_MSG UNTIL_MS

Logs through one ``logbus.Handler`` from THREADS threads at a random pace
(floods, trickles, idle stretches) until the wall clock passes UNTIL_MS (ms
since the Unix epoch), with ``extra`` fields and, for some records, a trace
context (``record.trace_id``/``span_id`` set by a filter). Messages follow
tests/src/chaos/token.rs: "chaos:NAME:THREAD:SEQ:LEN:" padded to LEN bytes
with chr(ord('a') + SEQ % 26). Books go to the mapped LEDGER as
tests/src/chaos/ledger.rs describes, so that they survive SIGKILL.
"""
import logging
import mmap
import os
import random
import struct
import sys
import threading
import time

import logbus

SLOT_WORDS = 16
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
LEVEL_INDEX = [1, 2, 3, 4, 5]  # TRACE .. FATAL index of each of LEVELS
WEIGHTS = [20, 30, 15, 15, 5]


class TraceFilter(logging.Filter):
    """Sets the trace context a record carries, from the thread's current one."""

    local = threading.local()

    def filter(self, record):
        ids = getattr(self.local, "ids", None)
        if ids:
            record.trace_id, record.span_id = ids
        return True


def main():
    ring, ledger_path, name = sys.argv[1], sys.argv[2], sys.argv[3]
    threads, seed, max_msg, until_ms = (int(a) for a in sys.argv[4:8])
    size = threads * SLOT_WORDS * 8
    fd = os.open(ledger_path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, size)
    ledger = mmap.mmap(fd, size)
    handler = logbus.Handler(ring, service=name)
    handler.addFilter(TraceFilter())
    log = logging.getLogger("chaos.python")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)

    def word(t, i):
        return (t * SLOT_WORDS + i) * 8

    def bump(t, i):
        at = word(t, i)
        (v,) = struct.unpack_from("<Q", ledger, at)
        struct.pack_into("<Q", ledger, at, v + 1)

    def run(t):
        rng = random.Random(seed * 1000 + t)
        seq = 0
        while time.time() * 1000 < until_ms:
            phase = rng.randrange(100)
            if phase < 25:
                count, pause = rng.randint(100, 1000), 0
            elif phase < 75:
                count, pause = rng.randint(10, 200), rng.randint(200, 3000) / 1e6
            else:
                time.sleep(rng.randint(50, 1200) / 1000)
                continue
            for _ in range(count):
                li = rng.choices(range(len(LEVELS)), WEIGHTS)[0]
                r = rng.randrange(100)
                if r < 80:
                    n = rng.randint(30, 200)
                elif r < 95:
                    n = rng.randint(200, 2000)
                else:
                    n = rng.randint(2000, max(max_msg, 2000))
                n = min(n, max_msg)
                head = "chaos:%s:%d:%d:%d:" % (name, t, seq, n)
                msg = head + chr(ord("a") + seq % 26) * max(0, n - len(head))
                if rng.randrange(100) < 30:
                    TraceFilter.local.ids = ("%032x" % (rng.getrandbits(127) | 1), "%016x" % (rng.getrandbits(63) | 1))
                else:
                    TraceFilter.local.ids = None
                struct.pack_into("<Q", ledger, word(t, 8), LEVEL_INDEX[li])
                bump(t, 2 + LEVEL_INDEX[li])
                bump(t, 0)
                # "%s" keeps a message with "%" in it as it is.
                log.log(LEVELS[li], "%s", msg, extra={"producer": name, "thr": t, "seq": seq})
                bump(t, 1)
                seq += 1
                if pause:
                    time.sleep(pause)

    def guarded(t):
        try:
            run(t)
        except BaseException as e:  # a failure is the harness's finding: say it, exit non-zero
            print("chaos Python producer %s thread %d: %r" % (name, t, e), file=sys.stderr, flush=True)
            os._exit(1)

    workers = [threading.Thread(target=guarded, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
