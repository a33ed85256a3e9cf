"""deploy/k8s renders (Kustomize) and validates offline: built-in kinds against the Kubernetes schemas
(kubernetes-validate), KEDA's against KEDA's CRD schemas (../shared/schemas/keda); and it says what the
farm needs: a worker per stage with probes, warm shutdown and a grace period over its hard limit, GPUs
for the GPU stages, KEDA on each stage queue (GPU stages to zero), only the coordinator reachable."""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.settings import Settings
from pipeline.stages import STAGE_NAMES
from tests.kustomize import Doc, containers, render
from tests.ops import DEPLOY, ROOT

pytestmark = pytest.mark.unit
K8S = DEPLOY / "k8s"
FOLDERS = {"base": K8S / "base", "cpu": K8S / "overlays/cpu", "gpu": K8S / "overlays/gpu"}
KEDA = ROOT.parent / "shared" / "schemas" / "keda"
KUBERNETES_VERSION = "1.30.0"
GPU_STAGES = ("asr", "llm", "animation")


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@lru_cache(maxsize=None)
def rendered(name: str) -> tuple[Doc, ...]:
    return tuple(render(FOLDERS[name]))


@pytest.mark.parametrize("name", FOLDERS)
def test_the_renderer_agrees_with_kustomize(name: str):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed; the renderer stands in")
    out = subprocess.run([kubectl, "kustomize", str(FOLDERS[name])], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    theirs = [d for d in yaml.safe_load_all(out) if d]

    def key(d: Doc) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    assert sorted(theirs, key=key) == sorted(rendered(name), key=key)


@lru_cache(maxsize=None)
def keda_schemas() -> dict[str, dict[str, Any]]:
    assert KEDA.is_dir(), f"KEDA's CRD schemas are expected in {KEDA}"
    schemas = {}
    for path in KEDA.glob("keda.sh_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                kind = crd["spec"]["names"]["kind"]
                schemas[f"{crd['spec']['group']}/{version['name']}/{kind}"] = strict(
                    version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused (the API server prunes them silently: a typo would be lost)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.mark.parametrize("name", FOLDERS)
def test_every_manifest_validates(name: str):
    docs = rendered(name)
    keda = keda_schemas()
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, keda[f"{doc['apiVersion']}/{doc['kind']}"])
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert {"Deployment", "Service", "Ingress", "Secret", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy",
            "Job", "PersistentVolumeClaim", "ScaledObject", "TriggerAuthentication"} <= kinds


def test_a_typo_is_caught():
    doc = dict(by_kind(list(rendered("base")), "ScaledObject")["worker-asr"])
    doc = {**doc, "spec": {**doc["spec"], "minReplicas": 0}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, keda_schemas()["keda.sh/v1alpha1/ScaledObject"])
    deployment = by_kind(list(rendered("base")), "Deployment")["worker-asr"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", FOLDERS)
def test_the_workers(name: str):
    docs = list(rendered(name))
    settings = Settings()
    deployments, scaled = by_kind(docs, "Deployment"), by_kind(docs, "ScaledObject")
    budgets = by_kind(docs, "PodDisruptionBudget")
    secrets = by_kind(docs, "Secret")
    auth = by_kind(docs, "TriggerAuthentication")["talkfarm-rabbitmq"]
    for stage in STAGE_NAMES:
        worker = deployments[f"worker-{stage}"]
        pod = worker["spec"]["template"]
        spec = pod["spec"]
        [container] = spec["containers"]
        assert container["command"][:2] == ["talkfarm-worker", stage]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "kill -TERM 1" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
        assert spec["terminationGracePeriodSeconds"] >= settings.stage(stage).hard_seconds + 10
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9100"
        assert spec["initContainers"][0]["command"] == ["talkfarm-admin", "models", "prepare", "--stage", stage]
        selector = worker["spec"]["selector"]["matchLabels"]
        assert budgets[f"worker-{stage}"]["spec"]["selector"]["matchLabels"] == selector
        for c in containers(worker):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"]
        trigger = scaled[f"worker-{stage}"]
        assert trigger["spec"]["scaleTargetRef"]["name"] == f"worker-{stage}"
        [rabbit] = trigger["spec"]["triggers"]
        assert rabbit["type"] == "rabbitmq" and rabbit["metadata"]["queueName"] == stage
        assert rabbit["authenticationRef"]["name"] == "talkfarm-rabbitmq"
        gpu = name == "gpu" and stage in GPU_STAGES
        assert ("nvidia.com/gpu" in container["resources"]["limits"]) == gpu, stage
        assert (trigger["spec"]["minReplicaCount"] == 0) == gpu, stage
        if gpu:
            assert "--pool" in container["command"] and spec["tolerations"][0]["key"] == "nvidia.com/gpu"
            assert container["image"].endswith("-gpu")
    [ref] = auth["spec"]["secretTargetRef"]
    assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_only_the_coordinator_is_reachable_from_outside():
    docs = list(rendered("base"))
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    coordinator_labels = by_kind(docs, "Deployment")["coordinator"]["spec"]["template"]["metadata"]["labels"]
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            sources = rule.get("from")
            if not sources:  # from anywhere: only the coordinator's pods, only its port
                selected = policy["spec"]["podSelector"]["matchLabels"]
                assert selected.items() <= coordinator_labels.items(), name
                assert [p["port"] for p in rule["ports"]] == [8000]
            else:
                assert all("namespaceSelector" in s or "podSelector" in s for s in sources), name
    [ingress] = by_kind(docs, "Ingress").values()
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"coordinator"}
    services = by_kind(docs, "Service")
    assert set(services) == {"coordinator"} and services["coordinator"]["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_prometheus_finds_the_pods():
    docs = list(rendered("base"))
    k8s = yaml.safe_load((DEPLOY / "prometheus/prometheus-k8s.yml").read_text())
    keeps = {job["job_name"]: job["relabel_configs"][0]["regex"] for job in k8s["scrape_configs"]}
    components = {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                  for d in by_kind(docs, "Deployment").values()
                  if d["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"}
    assert components == set(keeps.values()) == {"coordinator", "worker"}


def test_manifests_are_plain_files():
    for path in K8S.rglob("*"):
        if path.is_file():
            assert path.suffix == ".yaml", path
            assert Path(path).read_text().startswith("#"), f"{path}: say what it is in a comment on top"
