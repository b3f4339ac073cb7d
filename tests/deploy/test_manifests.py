"""The Kubernetes manifests, rendered by kustomize and checked against the Kubernetes schemas
offline, plus the promises the runbooks rely on (probes, drain timing, spread, budgets)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dataintel.settings import Settings
from tests.deploy.manifests import OVERLAYS, Manifest, one, render

kubernetes_validate = pytest.importorskip("kubernetes_validate")

CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "ServiceMonitor")}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    return request.param, render(request.param)


def _kubernetes_version() -> str:
    version: str = kubernetes_validate.utils.latest_version()
    return version


def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    version = _kubernetes_version()
    checked = 0
    for manifest in manifests:
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_RESOURCES:
            continue
        kubernetes_validate.validate(manifest, version, strict=True)
        checked += 1
    assert checked >= 9


def test_a_manifest_with_a_wrong_field_is_refused() -> None:
    # The validation above would pass anything if the schemas were not really applied.
    manifests = render("production")
    deployment = one(manifests, "Deployment", "dataintel-gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, _kubernetes_version(), strict=True)


def _settings(manifests: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = one(manifests, "ConfigMap", "dataintel-config")["data"]
    return data


def _container(deployment: Manifest) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_gateway_probes_drain_timing_and_resources(rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    gateway = one(manifests, "Deployment", "dataintel-gateway")
    pod = gateway["spec"]["template"]["spec"]
    container = _container(gateway)
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    settings = _settings(manifests)
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(settings["DATAINTEL_SHUTDOWN_DRAIN_SECONDS"])
    in_flight = float(settings["DATAINTEL_SHUTDOWN_TIMEOUT_SECONDS"])
    # Kubernetes sends SIGKILL at the grace period: the whole drain must fit in it.
    assert pre_stop + drain + in_flight < pod["terminationGracePeriodSeconds"]
    # The readiness probe must see "draining" well before the drain period ends.
    probe = container["readinessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] < drain + pre_stop
    assert pod["securityContext"]["runAsNonRoot"] is True
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_settings_are_real_and_secrets_are_only_referenced(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    known = {option.variable for option in Settings.options()}
    assert set(_settings(manifests)) <= known
    assert [m for m in manifests if m["kind"] == "Secret"] == []
    for deployment in (m for m in manifests if m["kind"] in {"Deployment", "Job"}):
        container = _container(deployment)
        refs = {next(iter(source.values()))["name"] for source in container["envFrom"]}
        assert refs == {"dataintel-config", "dataintel-secrets"}
        for variable in container.get("env", []):
            assert variable["name"] in known
            assert not re.search(r"SECRET|TOKEN|PASSWORD|DATABASE_URL|REDIS_URL", variable["name"])


def test_replicas_never_migrate_and_the_job_does(rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    assert _settings(manifests)["DATAINTEL_AUTO_MIGRATE"] == "false"
    job = one(manifests, "Job", "dataintel-migrate")
    assert _container(job)["args"] == ["db", "upgrade"]
    worker = _container(one(manifests, "Deployment", "dataintel-worker"))
    assert worker["args"] == ["worker"]


def test_service_budget_autoscaler_and_monitor_target_the_gateway(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    service = one(manifests, "Service", "dataintel")
    gateway = one(manifests, "Deployment", "dataintel-gateway")
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert "dataintel.io/track" not in service["spec"]["selector"]
    budget = one(manifests, "PodDisruptionBudget", "dataintel-gateway")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    autoscaler = one(manifests, "HorizontalPodAutoscaler", "dataintel-gateway")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "dataintel-gateway"
    assert autoscaler["spec"]["minReplicas"] <= gateway["spec"]["replicas"]
    monitor = one(manifests, "ServiceMonitor", "dataintel")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports
    policy = one(manifests, "NetworkPolicy", "dataintel")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_production_runs_three_pinned_replicas() -> None:
    manifests = render("production")
    gateway = one(manifests, "Deployment", "dataintel-gateway")
    assert gateway["spec"]["replicas"] == 3
    assert all(m.get("metadata", {}).get("namespace") == "dataintel" for m in manifests)
    image = _container(gateway)["image"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", image), image


def test_canary_is_the_stable_pod_with_another_image_behind_the_same_service() -> None:
    manifests = render("canary")
    stable = one(manifests, "Deployment", "dataintel-gateway")
    canary = one(manifests, "Deployment", "dataintel-gateway-canary")
    service = one(manifests, "Service", "dataintel")
    for deployment in (stable, canary):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
    assert canary["spec"]["template"]["metadata"]["labels"]["dataintel.io/track"] == "canary"
    # The canary must differ from stable by its image only: same probes, drain and limits.
    stable_pod = stable["spec"]["template"]["spec"]
    canary_pod = canary["spec"]["template"]["spec"]
    stable_container, canary_container = _container(stable), _container(canary)
    assert canary_container["image"] != stable_container["image"]
    assert {**canary_container, "image": None} == {**stable_container, "image": None}
    assert {**canary_pod, "containers": None, "topologySpreadConstraints": None} == {
        **stable_pod,
        "containers": None,
        "topologySpreadConstraints": None,
    }
    share = canary["spec"]["replicas"] / (canary["spec"]["replicas"] + stable["spec"]["replicas"])
    assert share <= 0.1
