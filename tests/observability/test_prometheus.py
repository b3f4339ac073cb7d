"""deploy/observability/ checked for real: promtool, the metrics it names, a Prometheus server.

Needs Debian's `prometheus` package (promtool and prometheus); skipped without it, except in
CI (CI=true), where .ci/run installs it and a missing binary fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.plugins.server import REPO, free_port, running_gateway

DEPLOY = REPO / "deploy" / "observability"
METRIC_NAME = re.compile(r"\bdataintel_[a-z0-9_]+")
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def binary(name: str) -> str:
    """The binary's path; skips without it outside CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing in CI: .ci/run installs Debian's prometheus")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return path


def _get(url: str | urllib.request.Request) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def _expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    found = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "dashboard.json").read_text())
    found += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        found.append(variable["definition"])
    return found


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_promtool_accepts_the_rules_and_the_scrape_config() -> None:
    promtool = binary("promtool")
    rules = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_a_runbook_section() -> None:
    page = (REPO / "docs" / "observability.md").read_text()
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = [r for group in rules["groups"] for r in group["rules"] if "alert" in r]
    assert alerts
    for alert in alerts:
        assert f"### {alert['alert']}" in page
        assert alert["annotations"]["runbook"].endswith("#" + alert["alert"].lower())


def test_a_real_prometheus_scrapes_the_gateway_and_loads_the_rules(tmp_path: Path) -> None:
    prometheus = binary("prometheus")
    with running_gateway(tmp_path) as origin:
        query = {"query": "query PromCheck { __typename }"}
        request = urllib.request.Request(
            f"{origin}/graphql",
            data=json.dumps(query).encode(),
            headers={"content-type": "application/json"},
        )
        assert json.loads(_get(request)) == {"data": {"__typename": "Query"}}

        exposition = _get(f"{origin}/metrics").decode()
        families = {family.name for family in text_string_to_metric_families(exposition)}
        named = {m for expression in _expressions() for m in METRIC_NAME.findall(expression)}
        assert named
        missing = sorted(name for name in named if _family(name) not in families)
        assert missing == [], f"named in deploy/observability/ but not exported: {missing}"

        port = free_port()
        shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
        config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["scrape_configs"][0]["static_configs"] = [
            {"targets": [urllib.parse.urlsplit(origin).netloc]}
        ]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (tmp_path / "prometheus.log").open("wb")
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            api = f"http://127.0.0.1:{port}/api/v1"
            promql = 'dataintel_graphql_operations_total{operation="PromCheck"}'
            result = _poll(f"{api}/query?query={urllib.parse.quote(promql)}", tmp_path)
            assert result[0]["metric"]["job"] == "dataintel"
            assert float(result[0]["value"][1]) == 1.0
            groups = _poll(f"{api}/rules", tmp_path, key="groups")
            rules = [rule for group in groups for rule in group["rules"]]
            assert len(rules) == 13
            assert all(rule["health"] in {"ok", "unknown"} for rule in rules), rules
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()


def _poll(url: str, tmp_path: Path, key: str = "result", seconds: float = 60) -> Any:
    """The API's data[key] once it is non-empty; fails with Prometheus's log at the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = json.loads(_get(url))["data"]
        except OSError:
            data = {}
        if data.get(key):
            return data[key]
        # Polling with a deadline: Prometheus scrapes and evaluates on its own interval.
        time.sleep(0.25)
    pytest.fail(f"no {key} from {url}:\n{(tmp_path / 'prometheus.log').read_text()[-3000:]}")
