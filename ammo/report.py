"""Turn a load run into latency percentiles and counts, as a table and as JSON."""

from __future__ import annotations

from typing import Any

from ammo.loadgen import Outcome, RunResult

PERCENTILES = (50, 90, 99, 99.9)


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def summarize(outcome: Outcome) -> dict[str, Any]:
    ordered = sorted(outcome.latencies)
    under = sum(1 for latency in ordered if latency <= 0.05)
    failures = sum(n for status, n in outcome.statuses.items() if status >= 500)
    return {
        "count": len(ordered),
        **{f"p{p:g}_ms": percentile(ordered, p) * 1000 for p in PERCENTILES},
        "max_ms": (ordered[-1] * 1000) if ordered else float("nan"),
        "under_50ms": under / len(ordered) if ordered else float("nan"),
        "statuses": dict(sorted(outcome.statuses.items())),
        "errors": dict(outcome.errors),
        "5xx": failures,
    }


def merged(result: RunResult) -> Outcome:
    total = Outcome()
    for outcome in result.outcomes.values():
        total.latencies.extend(outcome.latencies)
        for status, n in outcome.statuses.items():
            total.statuses[status] += n
        for error, n in outcome.errors.items():
            total.errors[error] += n
    return total


def to_json(profile: str, rate: float, result: RunResult) -> dict[str, Any]:
    overall = summarize(merged(result))
    return {
        "profile": profile,
        "offered_rate": rate,
        "achieved_rate": overall["count"] / result.duration,
        "duration_s": result.duration,
        "sent": result.sent,
        "generator_cpu_share": result.generator_cpu_seconds / result.duration,
        "max_open_connections": result.max_open_connections,
        "overall": overall,
        "endpoints": {label: summarize(o) for label, o in sorted(result.outcomes.items())},
    }


def table(run: dict[str, Any]) -> str:
    """Format one run for a terminal (and for RESULTS.md)."""
    head = (
        f"{run['profile']} at {run['offered_rate']:g} req/s offered: "
        f"{run['achieved_rate']:.0f} req/s achieved over {run['duration_s']:.0f} s, "
        f"generator CPU {run['generator_cpu_share']:.0%} of a core, "
        f"{run['max_open_connections']} connections"
    )
    lines = [
        head,
        "| endpoint | requests | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | <50 ms | 5xx "
        "| errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*run["endpoints"].items(), ("overall", run["overall"])]
    for label, s in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "0"
        lines.append(
            f"| {label} | {s['count']} | {s['p50_ms']:.1f} | {s['p90_ms']:.1f} | "
            f"{s['p99_ms']:.1f} | {s['p99.9_ms']:.1f} | {s['max_ms']:.1f} | "
            f"{s['under_50ms']:.2%} | {s['5xx']} | {errors} |"
        )
    statuses = ", ".join(f"{k}: {v}" for k, v in run["overall"]["statuses"].items())
    lines.append(f"status codes: {statuses}")
    return "\n".join(lines)
