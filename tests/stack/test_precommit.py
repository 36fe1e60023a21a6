"""The pre-commit hooks: valid, and running the locked tools that ./run_tests.sh runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, load_yaml

VENV_BIN = Path(sys.executable).parent
CONFIG = ROOT / ".pre-commit-config.yaml"


def hooks() -> list[dict[str, Any]]:
    return [hook for repo in load_yaml(CONFIG)["repos"] for hook in repo["hooks"]]


def pre_commit(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "pre-commit"), *args],
        cwd=ROOT,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(home), "PRE_COMMIT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestPreCommit:
    def test_the_config_is_valid(self, tmp_path: Path) -> None:
        result = pre_commit("validate-config", str(CONFIG), home=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_it_runs_ruff_lint_and_format_and_mypy(self) -> None:
        assert {"ruff-check", "ruff-format", "mypy"} <= {hook["id"] for hook in hooks()}

    @pytest.mark.parametrize("hook", hooks(), ids=lambda hook: hook["id"])
    def test_every_hook_runs_a_tool_of_the_locked_venv(self, hook: dict[str, Any]) -> None:
        assert hook["language"] == "system"
        tool = hook["entry"].split()[0]
        assert tool.startswith(".venv/bin/")
        assert (VENV_BIN / Path(tool).name).is_file()

    def test_the_lint_hook_passes_on_the_repository(self, tmp_path: Path) -> None:
        if not (ROOT / ".git").exists():
            pytest.skip("SKIPPED CHECK: not a git checkout, and pre-commit runs only in one")
        result = pre_commit("run", "ruff-check", "--all-files", home=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Passed" in result.stdout
