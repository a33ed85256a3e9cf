"""The metric catalogue keeps STYLE 14, and the dashboard and alert rules ask only for metrics the code exports."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.ops import DEPLOY, dashboard_queries, dashboards, exported_metrics, panels, rule_queries

pytestmark = pytest.mark.unit

# PromQL words that are not metric names.
_PROMQL = {"sum", "by", "rate", "histogram_quantile", "max", "min", "avg", "and", "or", "unless", "deriv", "le",
           "without", "on", "ignoring", "count", "increase", "delta", "max_over_time", "bool"}
_UNITS = ("_seconds", "_bytes", "_ratio", "_total", "_messages", "_consumers", "_up", "_fps_actual", "_fps_target")


def metric_names(expr: str) -> set[str]:
    """Identifiers of ``expr`` outside label matchers, strings and ranges: its metric names."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    return {word for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if word not in _PROMQL}


def test_metric_names_and_labels_follow_the_style():
    exported = exported_metrics()
    ours = {name: labels for name, labels in exported.items() if name.startswith("talkfarm_")}
    assert len(ours) > 40
    for name, labels in ours.items():
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert re.fullmatch(r"talkfarm(_[a-z0-9]+){2,}", base), name
        assert base.endswith(_UNITS), f"{name}: no base unit"
        # Bounded label values only: never an ID, never text.
        assert not set(labels) & {"job_id", "session_id", "trace_id", "id", "text", "path", "pid"}, (name, labels)
    required = ["talkfarm_asr_end_to_end_latency_seconds_bucket", "talkfarm_llm_time_to_first_token_seconds_bucket",
                "talkfarm_llm_inference_duration_seconds_bucket", "talkfarm_tts_synthesis_duration_seconds_bucket",
                "talkfarm_tts_rtf_ratio_bucket", "talkfarm_face_animation_fps_actual_bucket",
                "talkfarm_time_to_first_segment_seconds_bucket", "talkfarm_gpu_memory_used_bytes",
                "talkfarm_stage_queue_wait_seconds_bucket", "talkfarm_queue_depth_messages",
                "talkfarm_cache_requests_total", "talkfarm_model_load_seconds_bucket",
                "talkfarm_http_requests_total", "talkfarm_jobs_finished_total"]
    assert not [name for name in required if name not in ours]


def test_every_query_asks_for_exported_metrics():
    exported = exported_metrics()
    queries = dashboard_queries() + rule_queries()
    assert len(queries) > 40
    for expr in queries:
        unknown = metric_names(expr) - set(exported)
        assert not unknown, (expr, unknown)


def test_the_dashboard_has_a_row_per_stage_and_its_panels_are_well_formed():
    [board] = dashboards()
    assert board["uid"] == "talkfarm" and board["schemaVersion"] >= 36
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "ASR", "LLM", "TTS", "Animation", "Queues", "Caches", "Processes", "GPUs"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    provisioned = (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] == "timeseries" and panel["description"] and panel["targets"], panel["title"]
        assert f"uid: {panel['datasource']['uid']}" in provisioned
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    # Panels do not overlap.
    cells = set()
    for panel in panels(board):
        g = panel["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, panel["title"]
        cells |= area


def test_the_dashboard_json_is_what_its_script_writes():
    spec = importlib.util.spec_from_file_location("dashboard", DEPLOY / "grafana/dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads((DEPLOY / "grafana/dashboards/talkfarm.json").read_text()) == module.build(), \
        "run python deploy/grafana/dashboard.py"
