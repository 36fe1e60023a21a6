"""Static checks of the bundled stack: files only, no Docker engine needed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def require_binary(name: str, package: str) -> str:
    """Return the binary's path, or skip loudly: these checks matter and CI installs them."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"SKIPPED CHECK: `{name}` is not installed, so this monitoring check did not run. "
            f"Install Debian's `{package}` package (.ci/run does) to run it."
        )
    return path


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return parsed
