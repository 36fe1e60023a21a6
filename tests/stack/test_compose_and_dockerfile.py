"""docker-compose.yml and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.conftest import ROOT, load_yaml, require_binary

SERVICES = {"app", "postgres", "prometheus", "alertmanager", "tempo", "grafana"}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


SECRETS = ["JWT_SECRET", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"]
INIT_ENV = ROOT / "scripts/init-env.sh"


def compose_config(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run docker-compose's offline validation (it needs no engine for `config`)."""
    binary = require_binary("docker-compose", "docker-compose")
    # Only the env file decides: a developer's shell or own .env must not.
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    command = [binary, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]
    return subprocess.run(
        [*command, "config", *args], env=env, capture_output=True, text=True, timeout=60
    )


def init_env(target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INIT_ENV), str(target)], capture_output=True, text=True, timeout=30, check=False
    )


def read_env(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def generated_env(tmp_path: Path) -> Path:
    target = tmp_path / ".env"
    assert init_env(target).returncode == 0
    return target


class TestCompose:
    def test_declares_the_whole_stack(self, compose: dict[str, Any]) -> None:
        assert set(compose["services"]) == SERVICES

    def test_images_are_pinned(self, compose: dict[str, Any]) -> None:
        for name, service in compose["services"].items():
            if "image" in service and "build" not in service:
                image = service["image"]
                assert re.search(r":v?\d+(\.\d+)*$", image), f"{name}: {image} is not pinned"

    def test_app_is_built_here_and_wired_to_postgres_and_tempo(
        self, compose: dict[str, Any]
    ) -> None:
        app = compose["services"]["app"]
        env = environment(app)
        assert app["build"] == "."
        assert "8080:8080" in app["ports"]
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["JWT_SECRET"].startswith("${JWT_SECRET:?")  # required, never defaulted
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo:4318"
        assert app["depends_on"]["postgres"]["condition"] == "service_healthy"

    def test_postgres_has_a_pinned_major_a_volume_and_a_healthcheck(
        self, compose: dict[str, Any]
    ) -> None:
        postgres = compose["services"]["postgres"]
        assert re.fullmatch(r"postgres:\d+", postgres["image"])
        volume = postgres["volumes"][0].split(":")[0]
        assert volume in compose["volumes"]
        assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    def test_monitoring_services_mount_the_repos_configuration(
        self, compose: dict[str, Any]
    ) -> None:
        services = compose["services"]
        assert "./grafana/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
        assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
        assert "./grafana/tempo.yaml:/etc/tempo.yaml:ro" in services["tempo"]["volumes"]
        grafana = services["grafana"]
        assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
        assert environment(grafana)["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
        assert environment(grafana)["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"

    def test_every_bind_mounted_path_exists(self, compose: dict[str, Any]) -> None:
        for service in compose["services"].values():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("."):
                    assert (ROOT / source).exists(), source

    def test_every_variable_it_reads_is_documented_in_env_example(self) -> None:
        used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
        documented = set(re.findall(r"^#?\s*(\w+)=", (ROOT / ".env.example").read_text(), re.M))
        assert used <= documented, used - documented

    def test_prometheus_scrapes_the_app_and_tempo_listens_on_all_interfaces(self) -> None:
        prometheus = load_yaml(ROOT / "grafana/prometheus/prometheus.yml")
        (shop,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "shop"]
        assert shop["static_configs"][0]["targets"] == ["app:8080"]
        for rule_file in prometheus["rule_files"]:
            assert (ROOT / "grafana/prometheus" / rule_file).is_file()
        protocols = load_yaml(ROOT / "grafana/tempo.yaml")["distributor"]["receivers"]["otlp"]
        assert protocols["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
        assert protocols["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"

    def test_docker_compose_accepts_the_generated_env_and_passes_its_secrets_on(
        self, generated_env: Path
    ) -> None:
        result = compose_config(generated_env)
        assert result.returncode == 0, result.stderr
        services = yaml.safe_load(result.stdout)["services"]
        secrets = read_env(generated_env)
        app = environment(services["app"])
        assert app["JWT_SECRET"] == secrets["JWT_SECRET"]
        assert f"shop:{secrets['POSTGRES_PASSWORD']}@postgres" in app["DATABASE_URL"]
        assert (
            environment(services["postgres"])["POSTGRES_PASSWORD"] == secrets["POSTGRES_PASSWORD"]
        )
        grafana = environment(services["grafana"])
        assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == secrets["GRAFANA_ADMIN_PASSWORD"]

    def test_docker_compose_refuses_the_example_and_says_what_to_run(self) -> None:
        result = compose_config(ROOT / ".env.example", "-q")
        assert result.returncode != 0
        assert "run scripts/init-env.sh to write .env" in result.stderr

    @pytest.mark.parametrize("secret", SECRETS)
    def test_docker_compose_refuses_an_env_with_one_secret_empty(
        self, secret: str, generated_env: Path
    ) -> None:
        values = read_env(generated_env) | {secret: ""}
        generated_env.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        result = compose_config(generated_env, "-q")
        assert result.returncode != 0
        assert "run scripts/init-env.sh" in result.stderr

    def test_env_example_holds_no_secret_only_empty_values_to_generate(self) -> None:
        required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
        assert required == set(SECRETS)
        example = read_env(ROOT / ".env.example")
        assert {name for name, value in example.items() if value == ""} == set(SECRETS)


class TestInitEnv:
    def test_writes_a_private_env_with_a_fresh_secret_for_each_empty_value(
        self, generated_env: Path
    ) -> None:
        assert generated_env.stat().st_mode & 0o777 == 0o600
        written, example = read_env(generated_env), read_env(ROOT / ".env.example")
        assert written.keys() == example.keys()
        for name, value in written.items():
            if name in SECRETS:
                assert re.fullmatch(r"[0-9a-f]{64}", value), name
            else:
                assert value == example[name]
        assert len({written[name] for name in SECRETS}) == len(SECRETS)

    def test_two_runs_never_share_a_secret(self, tmp_path: Path) -> None:
        first, second = tmp_path / "first.env", tmp_path / "second.env"
        assert init_env(first).returncode == init_env(second).returncode == 0
        assert not set(read_env(first).values()) & {read_env(second)[s] for s in SECRETS}

    def test_refuses_to_overwrite_an_existing_env(self, generated_env: Path) -> None:
        before = generated_env.read_text()
        result = init_env(generated_env)
        assert result.returncode == 1
        assert "already exists; left unchanged" in result.stderr
        assert generated_env.read_text() == before

    def test_writes_dot_env_beside_the_example_by_default(self, tmp_path: Path) -> None:
        (tmp_path / "scripts").mkdir()
        shutil.copy2(INIT_ENV, tmp_path / "scripts/init-env.sh")
        shutil.copy2(ROOT / ".env.example", tmp_path / ".env.example")
        result = subprocess.run(
            ["sh", "scripts/init-env.sh"], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert read_env(tmp_path / ".env").keys() == read_env(tmp_path / ".env.example").keys()
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            ".env",
            ".env.example",
            "scripts",
        ]


class TestDockerfile:
    text = (ROOT / "Dockerfile").read_text()

    def test_passes_hadolint_without_a_single_finding(self) -> None:
        hadolint = Path(sys.executable).with_name("hadolint")
        result = subprocess.run(
            [str(hadolint), "--failure-threshold", "style", str(ROOT / "Dockerfile")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_is_multi_stage_on_the_pinned_slim_python_the_wheel_check_targets(self) -> None:
        bases = re.findall(r"^FROM (\S+)", self.text, re.M)
        assert len(bases) == 2
        # tests/stack/test_lock.py checks wheels for CPython 3.11 on bookworm's glibc.
        assert all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base) for base in bases), bases

    def test_installs_the_runtime_lock_with_hashes_and_wheels_only(self) -> None:
        install = " ".join(re.findall(r"pip install .*(?:\n.*)?", self.text))
        for option in ("--require-hashes", "--only-binary=:all:", "-r /tmp/runtime.txt"):
            assert option in install
        assert "COPY requirements/runtime.txt /tmp/runtime.txt" in self.text

    def test_installs_dependencies_in_a_layer_before_the_code(self) -> None:
        lock, code = self.text.index("COPY requirements/"), self.text.index("COPY shop")
        assert lock < self.text.index("pip install") < code

    def test_runs_as_non_root_with_a_healthcheck_and_the_server(self) -> None:
        assert re.search(r"^USER (?!root|0\b)\S+", self.text, re.M)
        assert "HEALTHCHECK" in self.text and "/healthz" in self.text
        assert 'CMD ["python", "-m", "shop", "serve"]' in self.text

    def test_runs_the_copied_sources_and_gives_the_user_its_metrics_directory(self) -> None:
        assert "PYTHONPATH=/app" in self.text
        assert "PROMETHEUS_MULTIPROC_DIR=/tmp/shop-metrics" in self.text
        assert '--owner shop --group shop --mode 0700 "$PROMETHEUS_MULTIPROC_DIR"' in self.text

    @pytest.mark.parametrize("path", ["requirements/runtime.txt", "shop", "observability"])
    def test_copies_what_the_image_needs(self, path: str) -> None:
        assert re.search(rf"^COPY {re.escape(path)}\b", self.text, re.M)


def dockerignored(path: str) -> bool:
    """Apply .dockerignore's patterns in order (the last match wins, ``!`` re-admits)."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        admit = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            ignored = not admit
    return ignored


class TestDockerignore:
    @pytest.mark.parametrize(
        "path",
        [
            ".venv/bin/python",
            ".data/jwt_secret",
            ".git/HEAD",
            ".env",
            ".mypy_cache/3.11/shop.json",
            ".pytest_cache/v/cache/lastfailed",
            ".coverage",
            "ammo/results/run.jsonl",
            "shop/__pycache__/app.cpython-311.pyc",
            "tests/conftest.py",
        ],
    )
    def test_keeps_out_of_the_build_context(self, path: str) -> None:
        assert dockerignored(path)

    def test_lets_in_everything_the_dockerfile_copies(self) -> None:
        text = (ROOT / "Dockerfile").read_text()
        sources = re.findall(r"^COPY (?!--from)(\S+)", text, re.M)
        assert sources
        for source in sources:
            path = ROOT / source
            files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert "__pycache__" in relative or not dockerignored(relative), relative
