"""Digest k6's end-of-test summary into the figures the kit records, and format them."""

from __future__ import annotations

import os
import re
from typing import Any

LATENCY = {"p50": "med", "p90": "p(90)", "p99": "p(99)", "p99.9": "p(99.9)", "max": "max"}
SUBMETRIC = re.compile(r"^(?P<metric>\w+)\{(?P<tag>\w+):(?P<value>[^}]*)\}$")


def latency(trend: dict[str, Any]) -> dict[str, float]:
    """Return the percentiles of a k6 trend in ms (k6's time unit)."""
    return {name: float(trend.get(stat, float("nan"))) for name, stat in LATENCY.items()}


def _slice(metrics: dict[str, Any], tag: str, value: str) -> dict[str, Any]:
    trend = metrics.get(f"http_req_duration{{{tag}:{value}}}", {})
    failed = metrics.get(f"http_req_failed{{{tag}:{value}}}", {})
    checks = metrics.get(f"checks{{{tag}:{value}}}")
    sliced = {
        "requests": int(trend.get("count", 0)),
        "latency_ms": latency(trend),
        "failed": int(failed.get("passes", 0)),  # a Rate's "passes" are its true samples
    }
    if checks is not None:
        sliced["check_failures"] = int(checks.get("fails", 0))
    iterations = metrics.get(f"iterations{{{tag}:{value}}}")
    if iterations is not None:
        sliced["iterations"] = int(iterations.get("count", 0))
    return sliced


def tagged_values(metrics: dict[str, Any], tag: str) -> list[str]:
    """Return the values of ``tag`` that have an ``http_req_duration`` sub-metric."""
    found = []
    for key in metrics:
        match = SUBMETRIC.match(key)
        if match and match["metric"] == "http_req_duration" and match["tag"] == tag:
            found.append(match["value"])
    return sorted(found, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def crossed_thresholds(metrics: dict[str, Any]) -> list[str]:
    """Return ``metric: threshold`` for each crossed one (the export marks them true)."""
    return [
        f"{name}: {expression}"
        for name, metric in sorted(metrics.items())
        for expression, crossed in metric.get("thresholds", {}).items()
        if crossed
    ]


def digest(summary: dict[str, Any], duration_s: float | None = None) -> dict[str, Any]:
    """Return requests, rates, latency, failures and drops: overall, per op, step and status."""
    metrics = summary["metrics"]
    reqs = metrics.get("http_reqs", {})
    checks = metrics.get("checks", {})
    count = int(reqs.get("count", 0))
    return {
        "requests": count,
        "achieved_rate": count / duration_s if duration_s else float(reqs.get("rate", 0)),
        "latency_ms": latency(metrics.get("http_req_duration", {})),
        "failed": int(metrics.get("http_req_failed", {}).get("passes", 0)),
        "check_failures": int(checks.get("fails", 0)),
        "dropped": int(metrics.get("dropped_iterations", {}).get("count", 0)),
        "max_vus": int(metrics.get("vus_max", {}).get("max", 0)),
        "thresholds_crossed": crossed_thresholds(metrics),
        "ops": {op: _slice(metrics, "op", op) for op in tagged_values(metrics, "op")},
        "steps": {s: _slice(metrics, "step", s) for s in tagged_values(metrics, "step")},
        "statuses": {s: _slice(metrics, "status", s) for s in tagged_values(metrics, "status")},
    }


def meets_slo(result: dict[str, Any], p99_ms: float = 50.0) -> bool:
    """Return whether p99 is within target, nothing dropped and <= 0.01% failed or unexpected."""
    requests: int = result["requests"]
    return bool(
        requests > 0
        and result["latency_ms"]["p99"] <= p99_ms
        and result["dropped"] == 0
        and result["failed"] <= requests * 0.0001
        and result.get("check_failures", 0) <= requests * 0.0001
    )


def _row(label: str, figures: dict[str, Any]) -> str:
    ms = figures["latency_ms"]
    return (
        f"| {label} | {figures['requests']} | {ms['p50']:.1f} | {ms['p90']:.1f} | "
        f"{ms['p99']:.1f} | {ms['p99.9']:.1f} | {ms['max']:.0f} | {figures['failed']} | "
        f"{figures.get('check_failures', 0)} |"
    )


HEAD = (
    "| {what} | requests | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | 5xx/errors "
    "| unexpected status |\n|---|---|---|---|---|---|---|---|---|"
)


def table(run: dict[str, Any]) -> str:
    """Format one run (and its CPU per request) for a terminal or a markdown file."""
    result = run["result"]
    lines = [
        f"{run['profile']} at {run['rate']:g} req/s offered: {result['achieved_rate']:.0f} "
        f"req/s achieved, {result['dropped']} dropped, SLO "
        f"{'met' if meets_slo(result) else 'MISSED'}",
        HEAD.format(what="operation"),
        *(_row(op, figures) for op, figures in result["ops"].items()),
        _row("all", result),
    ]
    lines += cpu_lines(run)
    return "\n".join(lines)


def cpu_lines(run: dict[str, Any]) -> list[str]:
    """CPU per request of each component, and how busy the whole box was meanwhile."""
    per_request = {
        k: v for k, v in run.get("cpu_us_per_request", {}).items() if not k.startswith("box_")
    }
    if not per_request:
        return []
    cost = ", ".join(f"{name} {us:.0f}" for name, us in per_request.items())
    lines = [f"CPU µs per request: {cost}"]
    cpu = run.get("cpu_seconds", {})
    if "box_busy" in cpu and run.get("wall_seconds"):
        cores = os.cpu_count() or 1
        busy = cpu["box_busy"] / run["wall_seconds"] / cores
        steal = cpu["box_steal"] / run["wall_seconds"] / cores
        lines.append(f"box: {busy:.0%} of {cores} cores busy (all processes), {steal:.1%} stolen")
    return lines


def step_table(run: dict[str, Any], hold_s: float) -> str:
    """One row per held step of a step-up, with the iterations k6 could not start."""
    lines = [
        "| step req/s | achieved | p50 ms | p99 ms | p99.9 ms | max ms | 5xx/errors | dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step, figures in run["result"]["steps"].items():
        if not step.isdigit():
            continue
        ms = figures["latency_ms"]
        started = figures.get("iterations", figures["requests"])
        dropped = max(0, round(int(step) * hold_s) - started)
        lines.append(
            f"| {step} | {figures['requests'] / hold_s:.0f} | {ms['p50']:.1f} | {ms['p99']:.1f} "
            f"| {ms['p99.9']:.1f} | {ms['max']:.0f} | {figures['failed']} | ~{dropped} |"
        )
    return "\n".join(lines)
