"""Latency against offered rate, one line per profile and label, from recorded runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple


class Point(NamedTuple):
    rate: float
    p50: float
    p99: float
    achieved: float


def points(run: dict[str, Any]) -> list[Point]:
    """A fixed-rate run is one point; a step-up is one point per held step."""
    result = run["result"]
    if "hold_s" not in run:
        ms = result["latency_ms"]
        return [Point(run["rate"], ms["p50"], ms["p99"], result["achieved_rate"])]
    return [
        Point(
            int(step), f["latency_ms"]["p50"], f["latency_ms"]["p99"], f["requests"] / run["hold_s"]
        )
        for step, f in result["steps"].items()
        if step.isdigit()
    ]


def plot_runs(runs: list[dict[str, Any]], target: Path) -> Path:
    """Write a PNG of p50/p99 against the offered rate and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[Point]] = defaultdict(list)
    for run in runs:
        # A step-up's profile reads "step-up <profile>" already.
        series[" ".join(filter(None, [run.get("label"), run["profile"]]))] += points(run)
    figure, axis = plt.subplots(figsize=(8, 5))
    for name, found in sorted(series.items()):
        found.sort()
        rates = [p.rate for p in found]
        axis.plot(rates, [p.p50 for p in found], "o-", label=f"{name} p50")
        axis.plot(rates, [p.p99 for p in found], "s-", label=f"{name} p99")
        for p in found:
            axis.annotate(
                f"{p.achieved:.0f}",
                (p.rate, p.p99),
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
