"""docker-compose.yml is valid and describes the whole farm (no Docker engine runs here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from contracts.settings import CoordinatorSettings, Settings
from coordinator.farm import coordinator_command

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def config(*files: str, profile: str | None = None) -> dict:
    args = ["docker-compose"]
    for f in files:
        args += ["-f", str(ROOT / f)]
    if profile:
        args += ["--profile", profile]
    subprocess.run(args + ["config", "-q"], check=True, cwd=ROOT)
    out = subprocess.run(args + ["config"], check=True, cwd=ROOT, capture_output=True, text=True).stdout
    loaded: dict = yaml.safe_load(out)
    return loaded


def test_compose_file_describes_the_farm():
    services = {name: s for name, s in config("docker-compose.yml")["services"].items() if not s.get("profiles")}
    assert set(services) == {"rabbitmq", "redis-cache", "redis", "postgres", "migrate", "coordinator", "worker-asr",
                             "worker-llm", "worker-tts", "worker-animation", "flower"}
    assert "management" in services["rabbitmq"]["image"]
    assert "allkeys-lru" in services["redis-cache"]["command"]
    for name, service in services.items():
        assert "healthcheck" in service or name == "migrate", name  # migrate is a one-shot job
    for stage in ("asr", "llm", "tts", "animation"):
        worker = services[f"worker-{stage}"]
        assert stage in worker["build"]["args"]["EXTRAS"].split(",")
        assert worker["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        # Healthy only when the models are loaded and the node consumes its queue (pipeline/health.py).
        assert worker["healthcheck"]["test"] == ["CMD", "talkfarm-health", stage]
        assert worker["restart"] == "unless-stopped"
        assert any(str(v).endswith(":/data:rw") or str(v).endswith(":/data") for v in worker["volumes"])
    assert "--broker_api" in " ".join(services["flower"]["command"])
    # The schema migration is a one-shot service that the coordinator waits for.
    assert services["migrate"]["command"] == ["talkfarm-admin", "db", "upgrade"]
    assert services["coordinator"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(services["coordinator"]["healthcheck"]["test"])
    # The TTS worker routes Chinese to the Mandarin backend, so its image carries that extra too.
    assert services["worker-tts"]["build"]["args"]["EXTRAS"] == "tts,zh"


def test_only_the_coordinator_is_published_where_the_environment_says(monkeypatch):
    monkeypatch.setenv("TALKFARM_HTTP_BIND", "0.0.0.0")
    monkeypatch.setenv("TALKFARM_HTTP_PORT", "18123")
    everything = config("docker-compose.yml")["services"]
    services = {name: s for name, s in everything.items() if not s.get("profiles")}  # what `up` starts
    assert {name for name, service in services.items() if service.get("ports")} == {"coordinator"}
    # The monitoring profile's Prometheus and Grafana listen on loopback unless told otherwise.
    for name in ("prometheus", "grafana"):
        [monitoring_port] = everything[name]["ports"]
        assert "127.0.0.1" in str(monitoring_port)
    [port] = services["coordinator"]["ports"]
    # docker-compose v1 prints "IP:PUBLISHED:TARGET/tcp"; compose v2 the long syntax.
    published = (port["host_ip"], str(port["published"]), str(port["target"])) if isinstance(port, dict) \
        else tuple(port.split("/")[0].split(":"))
    assert published == ("0.0.0.0", "18123", "8000")


def test_gpu_override_reserves_gpus():
    services = config("docker-compose.yml", "docker-compose.gpu.yml")["services"]
    for stage in ("asr", "llm", "animation"):
        devices = services[f"worker-{stage}"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    assert services["worker-asr"]["environment"]["TALKFARM_ASR__DEVICE"] == "cuda"
    assert services["worker-asr"]["environment"]["TALKFARM_BROKER__URL"].startswith("amqp://")
    # The GPU images take PyPI's CUDA torch, under their own tags; the CPU images stay CPU-only.
    for stage in ("llm", "animation"):
        assert services[f"worker-{stage}"]["build"]["args"]["TORCH_LOCAL"] == ""
        assert services[f"worker-{stage}"]["image"].endswith("-cuda")


def test_monitoring_profile_starts_prometheus_and_grafana():
    services = config("docker-compose.yml", profile="monitoring")["services"]
    monitoring = {name for name, s in services.items() if s.get("profiles")}
    assert monitoring == {"prometheus", "grafana"}
    assert all(services[name]["profiles"] == ["monitoring"] for name in monitoring)
    mounts = {str(v.get("source", v)) + " -> " + str(v.get("target", "")) if isinstance(v, dict) else v
              for name in monitoring for v in services[name]["volumes"]}
    for path in ("deploy/prometheus/prometheus.yml", "deploy/prometheus/alerts.yml", "deploy/grafana/provisioning",
                 "deploy/grafana/dashboards"):
        assert any(str(ROOT / path) in m for m in mounts), path
    # Prometheus scrapes the compose services by name, on the ports they serve metrics on.
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t.split(":")[0] for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"coordinator", *(f"worker-{stage}" for stage in ("asr", "llm", "tts", "animation"))}
    assert targets <= set(services)


def _keep_alive(command: list[str]) -> str:
    return command[command.index("--timeout-keep-alive") + 1]


def test_every_coordinator_keeps_idle_connections_as_long_as_the_settings_say():
    """uvicorn's own 5 s would close connections a client is about to reuse (a broken POST); compose,
    Kubernetes and ``talkfarm-admin farm`` all give the coordinator's ``keep_alive_seconds``."""
    wanted = str(CoordinatorSettings().keep_alive_seconds)
    compose = config("docker-compose.yml")["services"]["coordinator"]["command"]
    deployment = next(doc for doc in yaml.safe_load_all((ROOT / "deploy/k8s/base/coordinator.yaml").read_text())
                      if doc and doc.get("kind") == "Deployment")
    k8s = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    farm = coordinator_command(Settings(), "127.0.0.1", 8000)
    assert _keep_alive(compose) == _keep_alive(k8s) == _keep_alive(farm) == wanted
    custom = Settings(coordinator=CoordinatorSettings(keep_alive_seconds=120))
    assert _keep_alive(coordinator_command(custom, "127.0.0.1", 8000)) == "120"
