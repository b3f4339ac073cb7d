"""deploy/ read as data: kustomize renderings, the compose file, the nginx template."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "production", "canary")

Manifest = dict[str, Any]


def kustomize_command() -> list[str]:
    """`kustomize build` or `kubectl kustomize`; skips without either, fails in CI."""
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    if os.environ.get("CI") == "true":
        pytest.fail("neither kustomize nor kubectl is installed (.ci/run installs kubectl)")
    pytest.skip("neither kustomize nor kubectl is installed")


def render(overlay: str) -> list[Manifest]:
    """The manifests of one overlay, as kustomize renders them, offline."""
    result = subprocess.run(
        [*kustomize_command(), str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    """The manifest of that kind and name; fails when there is not exactly one."""
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind}/{name}"
    return found[0]


def compose() -> dict[str, Any]:
    """deploy/compose.yaml, with its YAML anchors resolved."""
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded
