"""The lock files in requirements/: in step with pyproject.toml, and enough for the image."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.factories import PASSWORD, random_username
from tests.helpers import ROOT, free_port, stop, wait_until_up

LOCKS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The image's platform: python:3.11-slim-bookworm (glibc 2.36), on either architecture.
IMAGE_GLIBC_MINOR = 36
ARCHITECTURES = ["x86_64", "aarch64"]
NETWORK_ERRORS = ("NewConnectionError", "Temporary failure in name resolution", "dns error")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]


def read_lock(path: Path) -> Iterator[Pin]:
    """Yield every pinned package of a requirements-format lock file."""
    joined = path.read_text().replace("\\\n", " ")
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *hashes = line.split(" --hash=")
        requirement = Requirement(spec)
        (pinned,) = requirement.specifier
        assert pinned.operator == "==", line
        name = canonicalize_name(requirement.name)
        yield Pin(name, pinned.version, requirement.marker, tuple(h.strip() for h in hashes))


def linux_environment(arch: str) -> dict[str, str]:
    return {
        "python_version": "3.11",
        "python_full_version": "3.11.11",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": arch,
    }


def versions_for(path: Path, arch: str = "x86_64") -> dict[str, str]:
    """Map package name to the version a Python 3.11 on Linux installs from ``path``."""
    environment = linux_environment(arch)
    return {
        pin.name: pin.version
        for pin in read_lock(path)
        if pin.marker is None or pin.marker.evaluate(environment)
    }


def declared(*groups: str) -> list[Requirement]:
    """Return the requirements of pyproject.toml's runtime (``""``) and named extras."""
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    texts = [
        text for group in groups for text in (extras[group] if group else project["dependencies"])
    ]
    requirements = [Requirement(text) for text in texts]
    return [r for r in requirements if canonicalize_name(r.name) != "shop"]


ALL_GROUPS = ("", *PYPROJECT["project"]["optional-dependencies"])
BUILD = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]


def image_platforms(arch: str) -> list[str]:
    """Return the platform tags pip accepts in the image, newest first (pip does not expand
    ``--platform`` to older glibc versions by itself)."""
    oldest = 17 if arch == "aarch64" else 5
    newest_first = range(IMAGE_GLIBC_MINOR, oldest - 1, -1)
    legacy = (
        ["manylinux2014", "manylinux2010", "manylinux1"] if arch == "x86_64" else ["manylinux2014"]
    )
    return [f"manylinux_2_{minor}_{arch}" for minor in newest_first] + [
        f"{tag}_{arch}" for tag in legacy
    ]


def skip_when_offline(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0 and any(error in result.stderr for error in NETWORK_ERRORS):
        pytest.skip(
            "SKIPPED CHECK: the package index cannot be reached, so the image's wheels were not "
            "checked. Run this test where the index is reachable (CI is)."
        )


class TestLocksMatchPyproject:
    @pytest.mark.parametrize("requirement", [*declared(*ALL_GROUPS), *BUILD], ids=lambda r: r.name)
    def test_every_declared_dependency_is_in_the_dev_lock_within_its_bounds(
        self, requirement: Requirement
    ) -> None:
        locked = versions_for(LOCKS / "dev.txt")
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not locked: run scripts/lock.sh"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{name}=={locked[name]} is outside {requirement.specifier}: run scripts/lock.sh"
        )

    @pytest.mark.parametrize("requirement", declared(""), ids=lambda r: r.name)
    def test_every_runtime_dependency_is_in_the_image_lock_within_its_bounds(
        self, requirement: Requirement
    ) -> None:
        locked = versions_for(LOCKS / "runtime.txt")
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not locked: run scripts/lock.sh"
        assert requirement.specifier.contains(locked[name], prereleases=True)

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_the_image_gets_the_versions_the_tests_run(self, arch: str) -> None:
        dev = versions_for(LOCKS / "dev.txt", arch)
        runtime = versions_for(LOCKS / "runtime.txt", arch)
        assert {name: dev.get(name) for name in runtime} == runtime

    def test_the_bootstrap_installs_the_uv_of_the_dev_lock(self) -> None:
        assert versions_for(LOCKS / "bootstrap.txt") == {
            "uv": versions_for(LOCKS / "dev.txt")["uv"]
        }

    @pytest.mark.parametrize("lock", ["dev.txt", "runtime.txt", "bootstrap.txt"])
    def test_every_pin_carries_its_hashes_and_the_lock_names_its_command(self, lock: str) -> None:
        pins = list(read_lock(LOCKS / lock))
        assert pins
        assert all(pin.hashes and all(h.startswith("sha256:") for h in pin.hashes) for pin in pins)
        assert "scripts/lock.sh" in (LOCKS / lock).read_text().splitlines()[1]

    @pytest.mark.parametrize("requirement", declared(*ALL_GROUPS), ids=lambda r: r.name)
    def test_every_dependency_has_an_upper_bound(self, requirement: Requirement) -> None:
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {"<", "<=", "==", "~=", "==="}, f"{requirement} has no upper bound"


@pytest.mark.index
class TestImageInstall:
    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_every_runtime_dependency_has_a_wheel_for_the_image(
        self, arch: str, tmp_path: Path
    ) -> None:
        """Download what the Dockerfile installs, as it installs it, for the image's platform.

        pip's HTTP cache makes repeated runs cheap; the machine's pip configuration (extra
        indexes, find-links) is ignored, as the image has none.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ]
        command += ["--require-hashes", "--only-binary=:all:", "--no-deps", "--dest", str(tmp_path)]
        command += ["--implementation", "cp", "--python-version", "3.11", "--abi", "cp311"]
        command += [arg for platform in image_platforms(arch) for arg in ("--platform", platform)]
        result = subprocess.run(
            [*command, "-r", str(LOCKS / "runtime.txt")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        skip_when_offline(result)
        assert result.returncode == 0, result.stderr
        wheels = sorted(path.name for path in tmp_path.iterdir())
        assert all(name.endswith(".whl") for name in wheels), wheels
        assert len(wheels) == len(versions_for(LOCKS / "runtime.txt", arch))

    @pytest.mark.e2e
    def test_the_service_serves_from_the_image_lock_and_the_copied_sources_alone(
        self, database_url: str, jwt_secret: str, engine: object, tmp_path: Path
    ) -> None:
        """Lay out the image's /opt/venv and /app here, start the service from them, use it.

        uv stands in for the image's pip (same lock, hashes, wheels only; the test above checks
        pip's side), so a runtime import of a package only the dev lock has fails here first.
        """
        venv = image_venv(tmp_path / "venv")
        app = tmp_path / "app"
        for package in ("shop", "observability"):
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / package, app / package, ignore=ignore)
        metrics = tmp_path / "metrics"
        metrics.mkdir()  # as the Dockerfile does for its PROMETHEUS_MULTIPROC_DIR
        port = free_port()
        env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": str(app),
            "DATABASE_URL": database_url,
            "JWT_SECRET": jwt_secret,
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "LOG_FORMAT": "json",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }
        url = f"http://127.0.0.1:{port}"
        log_path = tmp_path / "server.log"
        with log_path.open("wb") as log:
            command = [str(venv / "bin/python"), "-m", "shop", "serve"]
            process = subprocess.Popen(command, cwd=app, env=env, stdout=log, stderr=log)
        try:
            wait_until_up(url, process, timeout=60)
            with requests.Session() as client:
                # A kept-alive connection would hold the worker's graceful stop (20 s).
                client.headers["Connection"] = "close"
                login = {"username": random_username(), "password": PASSWORD}
                token = client.post(f"{url}/api/auth", json=login, timeout=10).json()["token"]
                auth = {"Authorization": f"Bearer {token}"}
                info = client.get(f"{url}/api/info", headers=auth, timeout=10)
            assert info.json()["coins"] == 1000
        finally:
            assert stop(process) == 0, log_path.read_text()[-3000:]


def image_venv(venv: Path) -> Path:
    """Create ``venv`` and install requirements/runtime.txt into it as the image does."""
    uv = str(Path(sys.executable).with_name("uv"))
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    install = [uv, "pip", "install", "--quiet", "--no-config", "--python", str(venv / "bin/python")]
    install += ["--require-hashes", "--only-binary", ":all:", "--no-deps"]
    result = subprocess.run(
        [*install, "-r", str(LOCKS / "runtime.txt")], capture_output=True, text=True, timeout=300
    )
    skip_when_offline(result)
    assert result.returncode == 0, result.stderr
    return venv
