"""Latency-vs-offered-rate plots, one PNG per results file."""

from __future__ import annotations

import json
from pathlib import Path


def plot_all(results: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for source in sorted(results.glob("*.jsonl")):
        runs = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        runs = [r for r in runs if "offered_rate" in r and r.get("profile", "").count(",") == 0]
        if len({r["offered_rate"] for r in runs}) < 2:  # one rate (cost, history): no curve
            continue
        runs.sort(key=lambda r: r["offered_rate"])
        figure, axis = plt.subplots(figsize=(8, 5))
        rates = [r["offered_rate"] for r in runs]
        for key, style in (("p50_ms", "o-"), ("p99_ms", "s-"), ("p99.9_ms", "^--")):
            axis.plot(rates, [r["overall"][key] for r in runs], style, label=key.replace("_ms", ""))
        axis.axhline(50, color="red", linestyle=":", label="50 ms SLO")
        axis.set_yscale("log")
        axis.set_xlabel("offered rate (req/s, open model)")
        axis.set_ylabel("latency (ms, log scale)")
        axis.set_title(f"{runs[0]['profile']}: latency vs offered rate")
        for r in runs:
            axis.annotate(
                f"{r['achieved_rate']:.0f}",
                (r["offered_rate"], r["overall"]["p99_ms"]),
                textcoords="offset points",
                xytext=(0, 6),
                fontsize=7,
                ha="center",
            )
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
        target = source.with_suffix(".png")
        figure.tight_layout()
        figure.savefig(target, dpi=110)
        plt.close(figure)
        written.append(target)
    return written
