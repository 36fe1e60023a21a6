"""Latency against offered rate, one line per profile and label, from recorded runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def plot_runs(runs: list[dict[str, Any]], target: Path) -> Path:
    """Write a PNG of p50/p99 against the offered rate and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        series[" ".join(filter(None, [run.get("label"), run["profile"]]))].append(run)
    figure, axis = plt.subplots(figsize=(8, 5))
    for name, points in sorted(series.items()):
        points.sort(key=lambda r: r["rate"])
        rates = [r["rate"] for r in points]
        for key, style in (("p50", "o-"), ("p99", "s-")):
            values = [r["result"]["latency_ms"][key] for r in points]
            axis.plot(rates, values, style, label=f"{name} {key}")
        for r in points:
            axis.annotate(
                f"{r['result']['achieved_rate']:.0f}",
                (r["rate"], r["result"]["latency_ms"]["p99"]),
                textcoords="offset points",
                xytext=(0, 6),
                fontsize=7,
                ha="center",
            )
    axis.axhline(50, color="red", linestyle=":", label="50 ms SLO")
    axis.set_yscale("log")
    axis.set_xlabel("offered rate (req/s, k6 open model); labels: achieved req/s")
    axis.set_ylabel("latency (ms, log scale)")
    axis.legend(fontsize=7)
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
