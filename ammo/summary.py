"""Markdown tables from ammo/results/*.jsonl, for RESULTS.md (``python -m ammo summary``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rate_table(runs: list[dict[str, Any]]) -> str:
    """One row per run: achieved rate, overall percentiles, SLI, failures.

    Runs that carry a ``build`` or ``label`` (history, before/after comparisons) get a first
    column naming them; rows keep the file's order within one offered rate.
    """
    names = [" ".join(str(run[k]) for k in ("build", "label") if run.get(k)) for run in runs]
    named = any(names)
    head = "| offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
    head += "| <50 ms | 5xx | socket errors/timeouts | 4xx | gen. CPU |"
    lines = [("| run " if named else "") + head, "|---" * (12 + named) + "|"]
    for name, run in sorted(zip(names, runs, strict=True), key=lambda nr: nr[1]["offered_rate"]):
        o = run["overall"]
        errors = sum(o["errors"].values())
        client = sum(n for status, n in o["statuses"].items() if 400 <= int(status) < 500)
        lines.append(
            (f"| {name} " if named else "")
            + f"| {run['offered_rate']:g} | {run['achieved_rate']:.0f} | {o['p50_ms']:.1f} | "
            f"{o['p90_ms']:.1f} | {o['p99_ms']:.1f} | {o['p99.9_ms']:.1f} | {o['max_ms']:.0f} | "
            f"{o['under_50ms']:.2%} | {o['5xx']} | {errors} | {client} | "
            f"{run['generator_cpu_share']:.0%} |"
        )
    return "\n".join(lines)


def endpoint_table(run: dict[str, Any]) -> str:
    """Per-endpoint percentiles of one run."""
    lines = [
        "| endpoint | requests | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | <50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, s in sorted(run["endpoints"].items()):
        lines.append(
            f"| {label} | {s['count']} | {s['p50_ms']:.1f} | {s['p90_ms']:.1f} | "
            f"{s['p99_ms']:.1f} | {s['p99.9_ms']:.1f} | {s['max_ms']:.0f} | "
            f"{s['under_50ms']:.2%} |"
        )
    return "\n".join(lines)


def summary(results: Path) -> str:
    out = []
    for path in sorted(results.glob("*.jsonl")):
        runs = [r for r in load(path) if "overall" in r]
        if not runs:
            out.append(f"### {path.stem}\n\n```\n{path.read_text().strip()}\n```\n")
            continue
        out.append(f"### {path.stem}\n\n{rate_table(runs)}\n")
        for run in sorted(runs, key=lambda r: r["offered_rate"]):
            title = f"{run['profile']} at {run['offered_rate']:g} req/s"
            out.append(
                f"<details><summary>{title}, per endpoint</summary>\n\n"
                f"{endpoint_table(run)}\n\n</details>\n"
            )
    return "\n".join(out)
