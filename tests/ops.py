"""What the operations tests read from deploy/: the dashboards' and alert rules' queries, the manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
RULES = DEPLOY / "prometheus" / "alerts.yml"


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_queries() -> list[str]:
    return [target["expr"] for d in dashboards() for p in panels(d) for target in p.get("targets", [])]


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def rule_queries() -> list[str]:
    return [rule["expr"] for rule in rules()]


def exported_metrics() -> dict[str, tuple[str, ...]]:
    """Every sample name the farm's processes can export (suffixes included) → its label names."""
    from prometheus_client import REGISTRY
    from prometheus_client.metrics import MetricWrapperBase

    import cache.metrics  # noqa: F401
    import coordinator.metrics  # noqa: F401
    import pipeline.calls  # noqa: F401
    import pipeline.metrics  # noqa: F401
    from contracts.settings import Settings
    from pipeline.exposition import MemoryCollector
    from pipeline.gpu import GpuCollector
    from pipeline.queue_metrics import QueueCollector

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
                "summary": ("_sum", "_count", ""), "unknown": ("",), "info": ("_info",)}
    names: dict[str, tuple[str, ...]] = {"up": ("job", "instance")}
    for collector in list(REGISTRY._collector_to_names):
        labels = tuple(getattr(collector, "_labelnames", ()))
        families = collector.describe() if isinstance(collector, MetricWrapperBase) else collector.collect()
        for family in families:
            for suffix in suffixes.get(family.type, ("",)):
                names[family.name + suffix] = labels
    custom = [QueueCollector(Settings()), MemoryCollector("coordinator"), GpuCollector("asr", None, [])]
    for collector in custom:
        for family in collector.describe():
            names[family.name] = tuple(getattr(family, "_labelnames", ()))
    return names
