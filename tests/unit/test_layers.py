"""The import contracts of pyproject.toml ([tool.importlinter]), checked by lint-imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
CONTRACTS = ("observability-standalone", "shop-layers", "no-http-below-api", "plain-core")
# A contract today's code breaks (observability/spans.py imports observability.compat).
BROKEN = """
[tool.importlinter]
root_packages = ["shop", "observability"]

[[tool.importlinter.contracts]]
name = "spans import nothing of the package"
type = "forbidden"
source_modules = ["observability.spans"]
forbidden_modules = ["observability.compat"]
"""


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestImportContracts:
    def test_every_contract_of_the_project_is_kept(self) -> None:
        result = lint_imports()
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout

    def test_the_project_declares_the_contracts_this_test_names(self) -> None:
        result = lint_imports(*(f"--contract={contract}" for contract in CONTRACTS))
        assert result.returncode == 0, result.stdout + result.stderr

    def test_a_broken_contract_fails_the_check(self, tmp_path: Path) -> None:
        config = tmp_path / "pyproject.toml"
        config.write_text(BROKEN)
        result = lint_imports(str(config))
        assert result.returncode != 0
        assert "observability.spans -> observability.compat" in result.stdout
