"""Writes deploy/grafana/dashboards/talkfarm.json, the farm's Grafana dashboard (run it after editing).

    python deploy/grafana/dashboard.py

One row per stage (ASR, LLM, TTS, animation) plus overview, queues, caches,
processes and GPUs. Every query names metrics the code exports
(tests/unit/test_dashboards.py checks that, and that the JSON is this script's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).parent / "dashboards" / "talkfarm.json"
DATASOURCE = {"type": "prometheus", "uid": "talkfarm-prometheus"}
RATE = "$__rate_interval"


def p95(metric: str, by: str = "", q: float = 0.95) -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))"


def mean(metric: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}_sum[{RATE}])) / sum by ({by}) (rate({metric}_count[{RATE}]))"


class Board:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.y = 0
        self.x = 0

    def row(self, title: str) -> None:
        if self.x:
            self.y, self.x = self.y + 8, 0
        self.panels.append({"type": "row", "title": title, "collapsed": False, "id": len(self.panels) + 1,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def panel(self, title: str, description: str, unit: str, *targets: tuple[str, str],
              kind: str = "timeseries", width: int = 8, thresholds: list[tuple[float, str]] | None = None) -> None:
        if self.x + width > 24:
            self.y, self.x = self.y + 8, 0
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [{"color": color, "value": value} for value, color in thresholds or []]
        self.panels.append({
            "type": kind, "title": title, "description": description, "id": len(self.panels) + 1,
            "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(targets)],
        })
        self.x += width


def stage_row(board: Board, stage: str, title: str) -> None:
    board.row(title)
    board.panel(f"{title}: task seconds p95", "Wall time of the stage's tasks (streamed segments included), "
                "by task kind", "s",
                (p95("talkfarm_stage_task_seconds", "task").replace(
                    "talkfarm_stage_task_seconds_bucket[", f'talkfarm_stage_task_seconds_bucket{{stage="{stage}"}}['),
                 "{{task}}"))
    board.panel(f"{title}: queue wait p95", "From publication to the start of a task: long means too few workers",
                "s", (p95("talkfarm_stage_queue_wait_seconds").replace(
                    "_bucket[", f'_bucket{{stage="{stage}"}}['), "p95"))
    board.panel(f"{title}: tasks by outcome", "Tasks a second, by outcome (ok, failed, retry, cancelled)", "ops",
                (f'sum by (task, outcome) (rate(talkfarm_stage_task_seconds_count{{stage="{stage}"}}[{RATE}]))',
                 "{{task}} {{outcome}}"))


def build() -> dict[str, Any]:
    b = Board()
    b.row("Overview")
    b.panel("Jobs finished", "Jobs a second by outcome", "ops",
            (f"sum by (outcome) (rate(talkfarm_jobs_finished_total[{RATE}]))", "{{outcome}}"))
    b.panel("Failed jobs", "Share of finished jobs that failed (alert over 5%)", "percentunit",
            (f'sum(rate(talkfarm_jobs_finished_total{{outcome="failed"}}[{RATE}])) '
             f"/ sum(rate(talkfarm_jobs_finished_total[{RATE}]))", "failed"), thresholds=[(0.05, "red")])
    b.panel("Time to first segment", "From submission to a streamed job's first video segment: what users wait",
            "s", (p95("talkfarm_time_to_first_segment_seconds", q=0.5), "p50"),
            (p95("talkfarm_time_to_first_segment_seconds"), "p95"))
    b.panel("HTTP requests", "Requests a second by route template and status", "reqps",
            (f"sum by (route, status) (rate(talkfarm_http_requests_total[{RATE}]))", "{{route}} {{status}}"),
            width=12)
    b.panel("HTTP latency p95", "By route template", "s",
            (p95("talkfarm_http_request_duration_seconds", "route"), "{{route}}"), width=12)

    stage_row(b, "asr", "ASR")
    b.panel("ASR end-to-end latency", "Publication of the ASR task to its transcript (alert: p95 over 800 ms)",
            "s", (p95("talkfarm_asr_end_to_end_latency_seconds", "backend", 0.5), "p50 {{backend}}"),
            (p95("talkfarm_asr_end_to_end_latency_seconds", "backend"), "p95 {{backend}}"),
            thresholds=[(0.8, "red")], width=12)
    b.panel("ASR model load", "Seconds to load the model in a worker process", "s",
            ("max by (backend) (talkfarm_model_load_seconds_sum{stage=\"asr\"} "
             "/ talkfarm_model_load_seconds_count{stage=\"asr\"})", "{{backend}}"), width=12)

    stage_row(b, "llm", "LLM")
    b.panel("LLM time to first token", "Generation call to first text delta (alert: p95 over 500 ms)", "s",
            (p95("talkfarm_llm_time_to_first_token_seconds", "backend", 0.5), "p50 {{backend}}"),
            (p95("talkfarm_llm_time_to_first_token_seconds", "backend"), "p95 {{backend}}"),
            thresholds=[(0.5, "red")], width=12)
    b.panel("LLM inference duration", "Generation call to last text delta", "s",
            (p95("talkfarm_llm_inference_duration_seconds", "backend"), "p95 {{backend}}"), width=12)

    stage_row(b, "tts", "TTS")
    b.panel("TTS real-time factor", "Synthesis seconds per second of speech, mean (alert over 1.2)", "none",
            (mean("talkfarm_tts_rtf_ratio", "backend"), "{{backend}}"), thresholds=[(1.2, "red")], width=12)
    b.panel("TTS synthesis duration", "Seconds to speak one text", "s",
            (p95("talkfarm_tts_synthesis_duration_seconds", "backend"), "p95 {{backend}}"), width=12)

    stage_row(b, "animation", "Animation")
    b.panel("Animation frames per second", "Rendered frames per second of render time, mean, against the video's "
            "frame rate (alert under 80% of it)", "fps",
            (mean("talkfarm_face_animation_fps_actual", "backend"), "actual {{backend}}"),
            ("max by (backend) (talkfarm_face_animation_fps_target)", "target {{backend}}"), width=12)
    b.panel("Backend call seconds", "Time inside each stage backend's call", "s",
            (p95("talkfarm_backend_seconds", "stage, backend"), "{{stage}} {{backend}}"), width=12)

    b.row("Queues")
    b.panel("Queue depth", "Messages waiting in each stage queue (KEDA scales the workers on it)", "short",
            ('max by (stage) (talkfarm_queue_depth_messages{kind="work"})', "{{stage}}"))
    b.panel("Dead-letter queues", "Tasks set aside after failing; anything here alerts", "short",
            ('max by (stage) (talkfarm_queue_depth_messages{kind="dead"})', "{{stage}}"),
            thresholds=[(1, "red")])
    b.panel("Consumers", "Workers consuming each stage queue (0: scaled to zero or down)", "short",
            ('max by (stage) (talkfarm_queue_consumers{kind="work"})', "{{stage}}"))

    b.row("Caches")
    b.panel("Cache hit ratio", "Hits per lookup, by cache", "percentunit",
            (f'sum by (namespace) (rate(talkfarm_cache_requests_total{{result="hit"}}[{RATE}])) '
             f"/ sum by (namespace) (rate(talkfarm_cache_requests_total[{RATE}]))", "{{namespace}}"), width=12)
    b.panel("Cache lookups", "Lookups a second, by cache and result", "ops",
            (f"sum by (namespace, result) (rate(talkfarm_cache_requests_total[{RATE}]))",
             "{{namespace}} {{result}}"), width=12)

    b.row("Processes")
    b.panel("Up", "1 when Prometheus scraped the process", "short",
            ('up{job=~"talkfarm-.*"}', "{{job}} {{instance}}"))
    b.panel("Resident memory", "Memory of each service's processes (a worker with its pool)", "bytes",
            ("sum by (service) (talkfarm_process_resident_memory_bytes)", "{{service}}"))
    b.panel("Broker", "1 when the coordinator could read the queues", "short", ("max(talkfarm_broker_up)", "broker"))

    b.row("GPUs")
    b.panel("GPU memory used", "Share of each GPU's memory in use (alert over 90%)", "percentunit",
            ("talkfarm_gpu_memory_used_bytes / talkfarm_gpu_memory_total_bytes", "{{stage}} GPU {{gpu}}"),
            thresholds=[(0.9, "red")])
    b.panel("GPU memory of the workers", "Memory the stage's own processes hold", "bytes",
            ("sum by (stage, gpu) (talkfarm_gpu_process_memory_used_bytes)", "{{stage}} GPU {{gpu}}"))
    b.panel("GPU utilisation", "Busy fraction of each GPU", "percentunit",
            ("avg by (stage, gpu) (talkfarm_gpu_utilization_ratio)", "{{stage}} GPU {{gpu}}"))

    return {
        "uid": "talkfarm", "title": "talkfarm", "tags": ["talkfarm"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": []}, "annotations": {"list": []},
        "panels": b.panels,
    }


if __name__ == "__main__":
    OUTPUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUTPUT}")
