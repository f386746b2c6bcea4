"""Plots the compare harness's emit latency CCDF (benches/results/emit-latency.tsv).

Usage: plot_ccdf.py [TSV] [PNG]; by default benches/results/emit-latency.tsv
and benches/results/emit-ccdf.png next to this file. One panel per producer
thread count; x: ns per call (log), y: fraction of calls slower (log).
"""
import collections
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
tsv = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "emit-latency.tsv"
png = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "results" / "emit-ccdf.png"

series = collections.OrderedDict()
for row in tsv.read_text().splitlines():
    label, ns, frac = row.split("\t")
    if float(frac) > 0:
        series.setdefault(label, ([], []))
        series[label][0].append(float(ns))
        series[label][1].append(float(frac))

STYLE = {
    "logbus wait, JSON file": ("tab:blue", "-"),
    "logbus drop, JSON file": ("tab:cyan", "-"),
    "logbus wait, null sink": ("tab:green", "-"),
    "logbus wait, 3 sinks": ("tab:olive", "-"),
    "mutex BufWriter": ("tab:red", "-"),
    "tracing-appender blocking": ("tab:orange", "-"),
    "tracing-appender lossy": ("tab:purple", "-"),
    "plain BufWriter": ("tab:gray", "--"),
}

fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
for ax, threads in zip(axes, ("1 thr", "2 thr")):
    for label, (xs, ys) in series.items():
        name, _, thr = label.rpartition(" (")
        if thr.rstrip(")") != threads and not (name == "plain BufWriter"):
            continue
        color, dash = STYLE.get(name, ("black", ":"))
        shown = name if thr.rstrip(")") == threads else f"{name} (1 thr)"
        ax.step(xs, ys, where="post", color=color, linestyle=dash, label=shown, linewidth=1.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(5, 1e8)
    ax.set_ylim(5e-7, 1.5)
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.1)
    ax.set_xlabel("emit call latency, ns (rdtsc, every 8th call; includes the ~10 ns timer)")
    ax.set_title(f"{threads.replace('thr', 'producer thread' + ('s' if threads[0] != '1' else ''))}")
    ax.legend(fontsize=8, loc="lower left")
axes[0].set_ylabel("fraction of calls slower")
fig.suptitle("Emit latency CCDF, benches/src/bin/compare.rs (all rounds pooled)")
fig.tight_layout()
fig.savefig(png, dpi=110)
print(f"wrote {png}")
