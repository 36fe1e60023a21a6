"""Builds to compare in one run: ``LABEL[:KEY=VALUE,...]`` on the command line.

``bare`` is the framework floor (a bare Flask app on the shop's gunicorn + gevent settings),
``untraced`` the shop with no OTLP endpoint, ``traced`` the shop exporting to a local OTLP
sink with its default tracing policy. Any other label is the shop, traced, with the given
environment (e.g. ``all:OTEL_TRACES_SAMPLER=always_on``). Two keys are not environment:
``SOURCE=<checkout>`` runs another build of the shop, ``TRACING=0`` drops the OTLP endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ammo.service import ROOT

DEFAULT = ("bare", "untraced", "traced")


@dataclass(frozen=True)
class Variant:
    label: str
    bare: bool = False
    tracing: bool = True
    env: dict[str, str] = field(default_factory=dict)
    source: Path = ROOT


def parse_variant(text: str) -> Variant:
    """Parse ``LABEL[:KEY=VALUE,...]``."""
    label, _, spec = text.partition(":")
    if not label:
        raise ValueError(f"variant {text!r} has no label")
    pairs = [item.split("=", 1) for item in spec.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"variant {text!r}: settings are KEY=VALUE, separated by commas")
    env = dict(pairs)
    source = Path(env.pop("SOURCE", ROOT)).resolve()
    tracing = env.pop("TRACING", "0" if label in ("bare", "untraced") else "1") != "0"
    return Variant(label, bare=label == "bare", tracing=tracing, env=env, source=source)


def rotated(variants: list[Variant], round_number: int) -> list[Variant]:
    """Return the variants in this round's order, so none always runs first or last."""
    shift = round_number % len(variants)
    return variants[shift:] + variants[:shift]
