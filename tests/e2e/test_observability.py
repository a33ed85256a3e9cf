"""Operations on a real farm: one traced chat job moves every process's metrics, its trace ID is in every
process's log lines (its words in none), and a real Prometheus scrapes the farm and loads the alert rules."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from contracts.settings import get_settings
from contracts.text.spoken import to_spoken
from pipeline.stages import STAGE_NAMES
from tests.farm import Farm, free_port
from tests.ops import dashboard_queries, rule_queries
from workers.tts.finish import normalise_text
from workers.tts.speaking import phrases

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Which planet is closest to the sun, and how hot does it get?"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, token: str = "") -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(url, timeout=10, follow_redirects=False, headers=headers)
    assert answer.status_code == 200, (url, answer.status_code)  # answered directly, no redirect
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@dataclass
class Observed:
    job: dict
    trace_id: str
    response_traceparent: str
    before: dict[str, Samples]
    after: dict[str, Samples]

    def moved(self, process: str, name: str, **labels: str) -> float:
        return total(self.after[process], name, **labels) - total(self.before[process], name, **labels)


def scrape_farm(farm: Farm) -> dict[str, Samples]:
    return {"coordinator": scrape(farm.url + "/metrics", farm.token),  # an operator key
            **{stage: scrape(url) for stage, url in farm.worker_metrics.items()}}


def wait_workers_ready(farm: Farm, timeout: float = 120) -> None:
    """Every worker's /readyz answers 200 (its models are loaded and its stage offer is published)."""
    deadline = time.monotonic() + timeout
    for url in farm.worker_metrics.values():
        ready = url.replace("/metrics", "/readyz")
        while httpx.get(ready, timeout=5).status_code != 200:
            assert time.monotonic() < deadline, f"{ready} did not answer 200"
            time.sleep(0.5)
        assert httpx.get(url.replace("/metrics", "/healthz"), timeout=5).status_code == 200


@pytest.fixture(scope="module")
def observed(farm: Farm, portrait_bytes, speak) -> Observed:
    wait_workers_ready(farm)
    time.sleep(5.5)  # the coordinator's stage catalog may be up to 5 s old: let it see every offer
    before = scrape_farm(farm)
    trace_id = secrets.token_hex(16)
    files = {"portrait": ("portrait.png", portrait_bytes), "audio": ("question.wav", speak(QUESTION))}
    with farm.client() as client:
        answer = client.post("/v1/jobs", data={"mode": "chat"}, files=files,
                             headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert answer.status_code == 202, answer.text
    job = farm.wait_job(answer.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    time.sleep(0.5)  # the last events' counters (coordinator) settle
    return Observed(job, trace_id, answer.headers["traceparent"], before, scrape_farm(farm))


def test_a_job_moves_the_metrics_of_every_process(observed: Observed):
    o = observed
    # The coordinator: HTTP by route template, the job by mode and outcome, the video cache, first segment.
    assert o.moved("coordinator", "talkfarm_http_requests_total", method="POST", route="/v1/jobs", status="202") == 1
    assert o.moved("coordinator", "talkfarm_http_request_duration_seconds_count", route="/v1/jobs/{job_id}") >= 1
    assert not any("route" in dict(ls) and o.job["job_id"] in dict(ls)["route"] for _, ls in o.after["coordinator"])
    assert o.moved("coordinator", "talkfarm_jobs_submitted_total", mode="chat", cached="false") == 1
    assert o.moved("coordinator", "talkfarm_jobs_finished_total", mode="chat", outcome="succeeded") == 1
    assert o.moved("coordinator", "talkfarm_cache_requests_total", namespace="video") >= 1
    assert o.moved("coordinator", "talkfarm_time_to_first_segment_seconds_count") == 1
    for stage in STAGE_NAMES:
        assert ("talkfarm_queue_depth_messages", frozenset({("stage", stage), ("kind", "work")})) in o.after[
            "coordinator"]
    assert total(o.after["coordinator"], "talkfarm_broker_up") == 1
    assert total(o.after["coordinator"], "talkfarm_process_resident_memory_bytes") > 0 or \
        total(o.after["coordinator"], "process_resident_memory_bytes") > 0

    # Every worker: its stage's task seconds and queue wait, model load, memory, its cache.
    kinds = {"asr": "stage", "llm": "stage", "tts": "segment", "animation": "segment"}
    caches = {"asr": "asr", "llm": "faq", "tts": "tts_phrases", "animation": "video"}
    for stage in STAGE_NAMES:
        assert o.moved(stage, "talkfarm_stage_task_seconds_count", stage=stage, task=kinds[stage], outcome="ok") >= 1
        assert o.moved(stage, "talkfarm_stage_queue_wait_seconds_count", stage=stage) >= 1
        if stage != "tts" or short_pieces(o.job):  # TTS looks up only pieces short enough to cache
            assert o.moved(stage, "talkfarm_cache_requests_total", namespace=caches[stage]) >= 1, stage
        assert total(o.after[stage], "talkfarm_model_load_seconds_count", stage=stage) >= 1
        assert total(o.after[stage], "talkfarm_process_resident_memory_bytes", service=f"worker-{stage}") > 50e6
        assert not any(o.job["job_id"] in v for _, ls in o.after[stage] for _, v in ls)
    assert o.moved("animation", "talkfarm_stage_task_seconds_count", task="assemble", outcome="ok") == 1
    # The stage figures operators watch.
    assert o.moved("asr", "talkfarm_asr_end_to_end_latency_seconds_count") == 1
    assert o.moved("llm", "talkfarm_llm_time_to_first_token_seconds_count") == 1
    assert o.moved("llm", "talkfarm_llm_inference_duration_seconds_count") == 1
    segments = len(o.job["segments"])
    assert o.moved("tts", "talkfarm_tts_synthesis_duration_seconds_count") == segments
    assert 0 < o.moved("tts", "talkfarm_tts_rtf_ratio_sum") / segments < 1.2
    assert o.moved("animation", "talkfarm_face_animation_fps_actual_count") == segments
    assert total(o.after["animation"], "talkfarm_face_animation_fps_target") == 25


def short_pieces(job: dict) -> int:
    """How many pieces of the job's spoken segments the phrase cache would look up (``PhraseCache.accepts``)."""
    limit = get_settings().tts.phrase_cache_max_chars
    return sum(1 for segment in job["segments"]
               for piece, _ in phrases(to_spoken(segment["text"], "en"), 0.0)
               if len(normalise_text(piece)) <= limit)


def farm_lines(farm: Farm) -> Iterator[tuple[str, str]]:
    """(process, line) of the farm's output, as ``talkfarm-admin farm`` prefixes it."""
    for raw in farm.log().splitlines():
        name, sep, line = raw.partition(" | ")
        if sep:
            yield name.strip(), line


def test_the_trace_id_is_in_every_process_and_the_words_in_none(observed: Observed, farm: Farm):
    o = observed
    assert o.trace_id in o.response_traceparent
    traced: dict[str, list[dict]] = {}
    for process, line in farm_lines(farm):
        if o.job["job_id"] in line and o.trace_id in line:
            record = json.loads(line)  # a job's lines are structured
            traced.setdefault(process, []).append(record)
    assert set(traced) >= {"coordinator", *(f"worker-{stage}" for stage in STAGE_NAMES)}, sorted(traced)
    for process, records in traced.items():
        for record in records:
            assert record["trace_id"] == o.trace_id and record["job_id"] == o.job["job_id"], record
            assert record["session_id"] == o.job["session_id"], record
            assert record["service"] == process
    stages_seen = {r.get("stage") for p, rs in traced.items() if p.startswith("worker-") for r in rs}
    assert stages_seen >= set(STAGE_NAMES)

    words = [o.job["transcript"], o.job["reply"], *(s["text"] for s in o.job["segments"])]
    words = [w.strip() for w in words if w and len(w.strip()) >= 12]
    assert len(words) >= 3
    log = farm.log()
    for text in words:
        assert text not in log and json.dumps(text)[1:-1] not in log, f"the log carries the user's words: {text!r}"


def prometheus_config(farm: Farm, tmp: Path) -> Path:
    workers = [url.removeprefix("http://").removesuffix("/metrics") for url in farm.worker_metrics.values()]
    token = tmp / "coordinator.token"  # the coordinator's /metrics wants an operator key, as in deploy/prometheus
    token.write_text(farm.token)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy/prometheus/alerts.yml")],
        "scrape_configs": [
            {"job_name": "talkfarm-coordinator", "static_configs": [{"targets": [farm.url.removeprefix("http://")]}],
             "authorization": {"type": "Bearer", "credentials_file": str(token)}},
            {"job_name": "talkfarm-workers", "static_configs": [{"targets": workers}]},
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(farm: Farm, observed: Observed, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is missing (scripts/test.sh installs it)"
    port = free_port()
    process = subprocess.Popen([binary, f"--config.file={prometheus_config(farm, tmp_path)}",
                                f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(url: str, expr: str) -> list[dict]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "success", (expr, answer.text)
    result: list[dict] = answer.json()["data"]["result"]
    return result


def test_prometheus_scrapes_the_farm_and_loads_the_rules(prometheus: str, observed: Observed):
    deadline = time.monotonic() + 60
    up: list[dict] = []
    while time.monotonic() < deadline:
        try:
            up = query(prometheus, "up")
        except (httpx.HTTPError, AssertionError):
            up = []
        if len(up) == 1 + len(STAGE_NAMES) and all(s["value"][1] == "1" for s in up):
            break
        time.sleep(0.5)
    assert len(up) == 1 + len(STAGE_NAMES) and all(s["value"][1] == "1" for s in up), up

    tasks = query(prometheus, "sum by (stage) (talkfarm_stage_task_seconds_count)")
    assert {s["metric"]["stage"] for s in tasks} == set(STAGE_NAMES)
    assert query(prometheus, 'talkfarm_jobs_finished_total{outcome="succeeded"}')
    assert len(query(prometheus, 'talkfarm_queue_depth_messages{kind="work"}')) == len(STAGE_NAMES)

    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules} >= {"TalkfarmLLMTimeToFirstTokenHigh", "TalkfarmWorkerDown",
                                          "TalkfarmDeadLetterQueueNotEmpty", "TalkfarmJobFailureRateHigh"}
    # Every dashboard panel's and alert's query is valid PromQL to this Prometheus.
    for expr in [*dashboard_queries(), *rule_queries()]:
        query(prometheus, re.sub(r"\$__rate_interval|\$__interval", "1m", expr))
    deadline = time.monotonic() + 15
    while any(r["health"] != "ok" for r in rules) and time.monotonic() < deadline:
        time.sleep(1)
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing = [a["labels"]["alertname"] for a in httpx.get(f"{prometheus}/api/v1/alerts").json()["data"]["alerts"]
              if a["state"] == "firing"]
    assert "TalkfarmWorkerDown" not in firing
