"""Deployment files: Kubernetes manifests against the official schemas (offline), the scale-out
overlay applied and validated, the single-host memory budget, and the structure of the Compose file,
the Render blueprint and the Dockerfile."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
BASE = DEPLOY / "k8s" / "base"
OVERLAY = DEPLOY / "k8s" / "overlays" / "scale-out"
K8S_VERSION = kubernetes_validate.latest_version()
SINGLE_HOST_BYTES = 8 * 1024**3
UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def base_resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_all(BASE / name)]


def memory_bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", quantity)
    assert match, f"unsupported memory quantity {quantity}"
    return int(match.group(1)) * UNITS.get(match.group(2) or "", 1)


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


@pytest.mark.parametrize("path", sorted(BASE.glob("*.yaml")), ids=lambda p: p.name)
def test_every_base_manifest_validates(path: Path) -> None:
    for doc in load_all(path):
        if doc.get("kind") == "Kustomization":
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml", "secret.template.yaml"}
    assert listed == on_disk


def test_services_have_grpc_probes_and_compute_is_headless_with_a_pdb() -> None:
    resources = base_resources()
    deployments = {d["metadata"]["name"]: d for d in resources if d["kind"] == "Deployment"}
    assert set(deployments) == {"gateway", "fetcher", "ranker", "compute"}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert "grpc" in container[probe], f"{name} {probe} is not a gRPC probe"
    assert deployments["compute"]["spec"]["replicas"] == 4
    services = {s["metadata"]["name"]: s for s in resources if s["kind"] == "Service"}
    assert services["compute"]["spec"]["clusterIP"] == "None"
    assert any(r["kind"] == "PodDisruptionBudget" and r["metadata"]["name"] == "compute" for r in resources)
    config = next(r for r in resources if r["kind"] == "ConfigMap")["data"]
    assert config["TECHNIC_COMPUTE_TARGET"].startswith("dns:///compute.")


def test_single_host_limits_fit_eight_gib() -> None:
    total = 0
    for resource in base_resources():
        if resource["kind"] not in ("Deployment", "StatefulSet"):
            continue
        replicas = resource["spec"].get("replicas", 1)
        for container in resource["spec"]["template"]["spec"]["containers"]:
            total += replicas * memory_bytes(container["resources"]["limits"]["memory"])
    assert total <= SINGLE_HOST_BYTES, f"limits sum to {total / 1024**3:.2f} GiB"


def test_scale_out_overlay_applies_to_compute_and_validates() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert (OVERLAY / kustomization["resources"][0] / "kustomization.yaml").exists()
    compute = next(r for r in base_resources() if r["kind"] == "Deployment" and r["metadata"]["name"] == "compute")
    (replicas,) = kustomization["replicas"]
    assert replicas["name"] == "compute"
    scaled = deep_merge(compute, {"spec": {"replicas": replicas["count"]}})
    for patch in kustomization["patches"]:
        doc = yaml.safe_load((OVERLAY / patch["path"]).read_text())
        assert (doc["kind"], doc["metadata"]["name"]) == ("Deployment", "compute")
        scaled = deep_merge(scaled, doc)
    kubernetes_validate.validate(scaled, K8S_VERSION, strict=True)
    assert scaled["spec"]["replicas"] > 4
    assert scaled["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_compose_runs_the_image_with_redis_7() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:7")
    technic = services["technic"]
    assert (PROJECT_ROOT / technic["build"]["dockerfile"]).exists()
    assert technic["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert technic["depends_on"]["redis"]["condition"] == "service_healthy"
    # The simulator accepts the key the fetcher is given, whatever the shell exports.
    environment = technic["environment"]
    assert environment["TECHNIC_MARKETSIM_API_KEY"] == environment["POLYGON_API_KEY"]


def test_render_blueprint_wires_key_value_and_keeps_secrets_unsynced() -> None:
    blueprint = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    by_type = {s["type"]: s for s in blueprint["services"]}
    web, key_value = by_type["web"], by_type["keyvalue"]
    assert web["runtime"] == "docker" and web["healthCheckPath"] == "/health"
    assert (PROJECT_ROOT / web["dockerfilePath"]).exists()
    env = {e["key"]: e for e in web["envVars"]}
    assert env["POLYGON_API_KEY"] == {"key": "POLYGON_API_KEY", "sync": False}
    source = env["REDIS_URL"]["fromService"]
    assert source == {"type": "keyvalue", "name": key_value["name"], "property": "connectionString"}
    assert "ipAllowList" in key_value


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_supervisord() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*127\.0\.0\.1:8080/health", text, re.M)
    assert re.search(r'^ENTRYPOINT \["supervisord", "-n", "-c", "[^"]*deploy/supervisord.conf"\]', text, re.M)
    for module in re.findall(r"python -m ([\w.]+)", text):
        assert importlib.util.find_spec(module) is not None, f"the image runs {module}, which does not exist"


def test_the_image_carries_no_tests_bench_or_fixtures() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line]
    assert copied and not [c for c in copied if c.split("/")[0] in ("tests", "bench", ".")]
    import tomllib

    packages = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert not [p for p in packages if p.split(".")[0] in ("tests", "bench")]
    runtime = [p for p in (PROJECT_ROOT / "services").rglob("*.py") if "synthetic" in p.name or "fixture" in p.name]
    assert runtime == []
