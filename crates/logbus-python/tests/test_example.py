"""examples/seed_example.py through a real collector with examples/collector.toml:
stdout gets JSON lines from INFO up, errors.log gets text lines from ERROR up,
one line per record even with a multi-line traceback."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import logbus_bin

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def collector_bin():
    exe = Path(logbus_bin()).with_name("logbus-collector")
    if not exe.is_file():
        pytest.fail(f"{exe} is not built: run `cargo build --workspace --bins`")
    return str(exe)


def wait_for(what, cond, timeout=30.0):
    """Polls a condition another process brings about; the timeout only bounds a failure."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def test_seed_example_routing(ring, tmp_path):
    env = dict(os.environ, LOGBUS_RING=str(ring.path))
    subprocess.run([sys.executable, str(EXAMPLES / "seed_example.py")], env=env, check=True)
    collector = subprocess.Popen(
        [collector_bin(), "--ring", str(ring.path), "--config", str(EXAMPLES / "collector.toml")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        errors = tmp_path / "errors.log"
        wait_for("the ERROR record in errors.log",
                 lambda: errors.exists() and "payment failed" in errors.read_text())
        collector.send_signal(signal.SIGTERM)  # drains, flushes and exits
        out, err = collector.communicate(timeout=30)
    finally:
        if collector.poll() is None:
            collector.kill()
    assert collector.returncode == 0, err

    console = [json.loads(line) for line in out.splitlines()]
    levels = {r["level"] for r in console}
    assert levels <= {"INFO", "WARN", "ERROR"}, "no DEBUG on the console"
    msgs = sorted(r["msg"] for r in console)
    assert msgs.count("payment failed") == 1
    assert sum(m.endswith(" handled") for m in msgs) == 7
    assert {"starting", "shutting down", "batch 0 done", "batch 1 done"} <= set(msgs)
    handled = [r for r in console if r["msg"].endswith(" handled")]
    assert all(len(r["trace_id"]) == 32 and len(r["span_id"]) == 16 for r in handled)
    assert len({r["trace_id"] for r in handled}) == 7, "one trace per request"
    assert all(r["service"] == "seed-example" for r in console)
    batch_pids = {r["pid"] for r in console if r["target"] == "shop.batch"}
    main_pid = next(r["pid"] for r in console if r["msg"] == "starting")
    assert batch_pids and main_pid not in batch_pids  # a pool worker may take both jobs
    failed = next(r for r in console if r["msg"] == "payment failed")
    assert "ValueError: card declined for order 4" in failed["fields"]["exception"]

    lines = errors.read_text().splitlines()
    assert len(lines) == 1, lines  # the traceback's newlines are escaped
    assert "ERROR" in lines[0] and "payment failed" in lines[0]
    assert "Traceback (most recent call last):\\n" in lines[0]
