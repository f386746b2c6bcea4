"""The collector's /metrics read by the Prometheus project's own Python parser
(prometheus_client.parser): every family parses, has its type and help, and
the counters agree with what went through the ring."""

import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import logbus_bin
from test_example import collector_bin, wait_for

RECORDS = 300


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
        assert resp.status == 200
        ctype = resp.headers["Content-Type"]
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
        return {f.name: f for f in text_string_to_metric_families(resp.read().decode())}


def value(families, family, sample, **labels):
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def test_metrics_parse_with_the_official_parser(ring, tmp_path):
    subprocess.run([logbus_bin(), "create", str(ring.path)], check=True)
    config = tmp_path / "collector.toml"
    out = tmp_path / "out.json"
    config.write_text(f'[[sinks]]\nname = "disk"\ntype = "file"\npath = "{out}"\nformat = "json"\n')
    stderr = tmp_path / "collector.err"
    with open(stderr, "w") as err:
        collector = subprocess.Popen(
            [collector_bin(), "--ring", str(ring.path), "--config", str(config),
             "--metrics", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for("the metrics line", lambda: "metrics at http://" in stderr.read_text()
                 or collector.poll() is not None)
        assert collector.poll() is None, stderr.read_text()
        addr = stderr.read_text().split("metrics at http://")[1].split("/")[0]
        lines = "".join(f"record {i}\n" for i in range(RECORDS))
        subprocess.run([logbus_bin(), "emit", "--level", "warn", str(ring.path)],
                       input=lines, text=True, check=True)

        def delivered():
            return value(scrape(addr), "logbus_sink_delivered",
                         "logbus_sink_delivered_total", sink="disk") == RECORDS

        wait_for("the sink's delivered counter", delivered)
        families = scrape(addr)
    finally:
        collector.terminate()
        collector.wait(timeout=30)
    assert collector.returncode == 0, stderr.read_text()

    assert families, "no metric family"
    for f in families.values():
        assert f.type in ("counter", "gauge", "histogram", "summary", "info", "unknown"), f
        assert f.documentation, f"{f.name} has no HELP"
        assert f.samples, f"{f.name} has no sample"
    assert families["logbus_sink_delivered"].type == "counter"
    assert value(families, "logbus_ring_published", "logbus_ring_published_total",
                 level="WARN") == RECORDS
    assert value(families, "logbus_ring_published", "logbus_ring_published_total",
                 level="INFO") == 0
