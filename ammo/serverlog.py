"""What the service itself saw during a run: its access log and its 503 counters.

The client's latency (k6) and the service's own (the access log's ``duration_ms``) should
agree; where they do not, time was spent where the service cannot see it. The log is read
from the byte offset it had when the run started, so each run reads only its own lines.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

ACCESS_LOGGER = "shop.access"


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank ``share`` quantile of ``values`` (0 when empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def lines_since(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Return the JSON lines written to ``path`` after ``offset``, and the new offset."""
    with path.open("rb") as log:
        log.seek(offset)
        data = log.read()
    records = []
    complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for next time
    for line in complete.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # gunicorn's own start-up lines and tracebacks are not JSON
        if isinstance(record, dict):
            records.append(record)
    return records, offset + len(complete)


def digest(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Latency per status and time queued before the handler, from access lines; counts of
    the other events by level and text."""
    durations: dict[str, list[float]] = {}
    queued: list[float] = []
    events: Counter[str] = Counter()
    for record in records:
        if record.get("logger") == ACCESS_LOGGER and "duration_ms" in record:
            durations.setdefault(str(record.get("status")), []).append(record["duration_ms"])
            if "queue_ms" in record:
                queued.append(record["queue_ms"])
        elif record.get("level") in ("warning", "error", "critical"):
            events[f"{record['level']}: {record.get('event', '')}"] += 1
    everything = [d for found in durations.values() for d in found]
    return {
        "requests": len(everything),
        "latency_ms": _latency(everything),
        "statuses": {status: _latency(found) for status, found in sorted(durations.items())},
        "queue_ms": _latency(queued),
        "events": dict(events.most_common(10)),
    }


def _latency(durations: list[float]) -> dict[str, float]:
    return {
        "count": len(durations),
        "p50": percentile(durations, 0.5),
        "p99": percentile(durations, 0.99),
        "max": max(durations, default=0.0),
    }


def scrape(url: str) -> dict[str, float]:
    """Read the service's 503 answers by reason, its queue-wait buckets by outcome and the
    CPU its door spent refusing.

    Keys: ``unavailable:<reason>`` (``shop_unavailable_responses_total``),
    ``queue:<outcome>:<le>`` (``shop_request_queue_seconds_bucket``, cumulative) and
    ``refusal_cpu_seconds`` (``shop_admission_refusal_cpu_seconds_total``).
    """
    text = requests.get(f"{url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shop_unavailable_responses_total":
                key = f"unavailable:{sample.labels.get('reason', '')}"
            elif sample.name == "shop_request_queue_seconds_bucket":
                key = f"queue:{sample.labels['outcome']}:{sample.labels['le']}"
            elif sample.name == "shop_admission_refusal_cpu_seconds_total":
                key = "refusal_cpu_seconds"
            else:
                continue
            found[key] = found.get(key, 0.0) + sample.value
    return found


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Return what grew between two readings."""
    grown = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return {k: v for k, v in sorted(grown.items()) if v}


def unavailable(grown: dict[str, float]) -> dict[str, int]:
    """The 503 answers by reason, from a ``difference`` of two scrapes."""
    prefix = "unavailable:"
    return {k.removeprefix(prefix): round(v) for k, v in grown.items() if k.startswith(prefix)}


def queue_quantile(grown: dict[str, float], outcome: str, share: float) -> float | None:
    """The ``share`` quantile (ms) of the queue wait of ``outcome`` requests, from buckets.

    Returns the upper edge of the bucket the quantile falls in: bucket resolution only.
    """
    prefix = f"queue:{outcome}:"
    edges = sorted(
        (float(k.removeprefix(prefix)), count) for k, count in grown.items() if k.startswith(prefix)
    )
    total = edges[-1][1] if edges else 0
    if not total:
        return None
    for edge, cumulative in edges:
        if cumulative >= share * total:
            return edge * 1000
    return None
