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


def plot_overload(capacity: float, rows: list[dict[str, Any]], target: Path) -> Path:
    """Write a PNG of goodput and latency against the offered rate of an overload session."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda row: row["offered"])
    offered = [row["offered"] for row in rows]
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(11, 4.5))
    rates.plot(offered, [row["goodput"] for row in rows], "o-", label="200s per second")
    rates.plot(offered, [row["refused_per_s"] for row in rows], "x-", label="503s per second")
    dropped = [row["dropped"] / row["seconds"] for row in rows]
    if any(dropped):
        rates.plot(offered, dropped, "v--", label="arrivals k6 dropped per second")
    rates.axhline(capacity, color="grey", linestyle="--", label=f"capacity {capacity:g}")
    rates.axhline(0.9 * capacity, color="red", linestyle=":", label="90% of capacity")
    rates.set_xlabel("offered req/s (k6 open model)")
    rates.set_ylabel("answers per second")
    for name, key, marker in (
        ("p99 of 200s (client)", "p99_200_ms", "o-"),
        ("p99 of 200s (service log)", "server_p99_200_ms", "s--"),
        ("p99 of 503s (client)", "p99_503_ms", "x-"),
        ("p99 of 200s (wire)", "wire_p99_200_ms", "o:"),
        ("p99 of 503s (wire)", "wire_p99_503_ms", "x:"),
    ):
        found = [(row["offered"], row[key]) for row in rows if row.get(key)]
        if found:
            latency.plot(*zip(*found, strict=True), marker[0] + marker[1:], label=name)
    latency.axhline(100, color="red", linestyle=":", label="100 ms (served)")
    latency.axhline(20, color="orange", linestyle=":", label="20 ms (refused)")
    latency.set_yscale("log")
    latency.set_xlabel("offered req/s (k6 open model)")
    latency.set_ylabel("ms (log scale)")
    for axis in (rates, latency):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
