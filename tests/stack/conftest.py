"""Static checks of the bundled stack: files only, no Docker engine needed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ROOT, load_yaml


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return parsed
