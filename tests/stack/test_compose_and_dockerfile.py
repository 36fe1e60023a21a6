"""docker-compose.yml and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.stack.conftest import ROOT, load_yaml, require_binary

SERVICES = {"app", "postgres", "prometheus", "alertmanager", "tempo", "grafana"}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run docker-compose's offline validation (it needs no engine for `config`)."""
    binary = require_binary("docker-compose", "docker-compose")
    # An empty env file: a developer's own .env must not decide the outcome.
    with tempfile.NamedTemporaryFile(suffix=".env") as empty:
        command = [binary, "-f", str(ROOT / "docker-compose.yml"), "--env-file", empty.name]
        return subprocess.run(
            [*command, "config", "-q"], env=env, capture_output=True, text=True, timeout=60
        )


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

    def test_docker_compose_accepts_the_file(self) -> None:
        secrets = {"JWT_SECRET": "x" * 32, "POSTGRES_PASSWORD": "p", "GRAFANA_ADMIN_PASSWORD": "g"}
        result = compose_config({**os.environ, **secrets})
        assert result.returncode == 0, result.stderr

    def test_docker_compose_refuses_to_start_without_the_secrets(self) -> None:
        result = compose_config({k: v for k, v in os.environ.items() if k != "JWT_SECRET"})
        assert result.returncode != 0
        assert "(see .env.example)" in result.stderr


class TestDockerfile:
    text = (ROOT / "Dockerfile").read_text()

    def test_passes_hadolint(self) -> None:
        hadolint = Path(sys.executable).with_name("hadolint")
        result = subprocess.run(
            [str(hadolint), "--failure-threshold", "error", str(ROOT / "Dockerfile")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_is_multi_stage_on_a_pinned_slim_python(self) -> None:
        bases = re.findall(r"^FROM (\S+)", self.text, re.M)
        assert len(bases) == 2
        assert all(re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base) for base in bases), bases

    def test_installs_from_the_projects_metadata(self) -> None:
        assert "COPY pyproject.toml" in self.text
        assert re.search(r"pip install .*\s\.$", self.text, re.M)

    def test_runs_as_non_root_with_a_healthcheck_and_the_server(self) -> None:
        assert re.search(r"^USER (?!root|0\b)\S+", self.text, re.M)
        assert "HEALTHCHECK" in self.text and "/healthz" in self.text
        assert 'CMD ["python", "-m", "shop", "serve"]' in self.text

    @pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "shop", "observability"])
    def test_copies_what_the_install_needs(self, path: str) -> None:
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", self.text, re.M)
