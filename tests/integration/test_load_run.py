"""A tiny load run against a farm of real processes (stand-ins, a private broker and Redis), and the
coordinator run as several HTTP processes with its background work in a process of its own: request rates
are counted across the processes, and ``/readyz`` follows the background process's heartbeat."""

from __future__ import annotations

import csv
import json
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from bench.farm_up import start_farm
from bench.load.run import farm_settings, load_run, parse
from coordinator.sse import FALLBACK_SECONDS
from tests.faults.farm import FaultFarm
from tests.faults.process import wait_until

pytestmark = pytest.mark.integration

RUN = ["--users", "3", "--spawn-rate", "3", "--minutes", "0.4", "--think", "0.5", "1.5", "--keys", "2",
       "--coordinator-workers", "2", "--fresh-share", "0.3", "--grace", "60", "--job-timeout", "60"]


@pytest.fixture(scope="module")
def farm() -> Iterator[FaultFarm]:
    with tempfile.TemporaryDirectory(prefix="talkfarm-load-test-") as tmp, ExitStack() as stack:
        args = parse([*RUN, "--out", str(Path(tmp) / "report")])
        env = {**farm_settings(args), "TALKFARM_COORDINATOR__HEARTBEAT_SECONDS": "0.5",
               "TALKFARM_COORDINATOR__HEARTBEAT_TIMEOUT_SECONDS": "3"}
        yield start_farm(stack, Path(tmp), "standin", env=env)


def test_tiny_load_run_loses_no_job(farm: FaultFarm, tmp_path: Path) -> None:
    assert farm.settings.coordinator.workers == 2 and farm.settings.coordinator.background == "separate"
    args = parse([*RUN, "--out", str(tmp_path / "report")])
    summary = load_run(args, farm, tmp_path)

    out = tmp_path / "report"
    for name in ("summary.json", "jobs.csv", "queues.csv", "latency.csv", "errors.csv", "locust_stats.csv",
                 "latency.png", "throughput.png", "queues.png"):
        assert (out / name).stat().st_size > 0, name
    store = summary["jobs"]["store"]
    assert summary["jobs"]["accepted"] >= 3
    assert store["lost"] == 0 and store["stuck"] == 0, store
    assert store["by_status"] == {"succeeded": summary["jobs"]["accepted"]}, store
    assert summary["jobs"]["succeeded_seen"] == summary["jobs"]["accepted"]
    assert summary["errors"] == {}
    # The coordinator's own clock saw every submit (its /metrics histogram, read before the farm went).
    assert summary["submit_server"]["n"] >= summary["jobs"]["submitted"]
    assert summary["submit_server"]["within"]["30"] == 1.0
    # Followed by SSE: the events were stored by the background process and woke the stream on whichever
    # HTTP process held it; a lost wake-up would cost a stream its fallback look.
    assert summary["first_segment_s"]["n"] == summary["jobs"]["accepted"]
    assert summary["first_segment_s"]["p50"] < FALLBACK_SECONDS
    assert json.loads((out / "summary.json").read_text())["run"]["command"].startswith("python -m bench.load.run")
    with (out / "queues.csv").open() as f:
        samples = list(csv.DictReader(f))
    assert len(samples) >= 20 and {"asr", "llm", "tts", "animation", "events"} <= set(samples[0])


def test_request_rate_is_counted_across_http_processes(farm: FaultFarm) -> None:
    token = farm.create_key("slow", "slow")  # burst 4, then 6 a minute
    statuses = []
    for _ in range(10):  # a new connection each: the kernel hands them to both processes
        with httpx.Client(base_url=farm.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            statuses.append(client.get(f"/v1/jobs/{uuid.uuid4()}").status_code)
    assert statuses.count(404) in (4, 5), statuses  # one bucket: per-process buckets would let ~8 through
    assert statuses.count(429) == 10 - statuses.count(404)


def test_readyz_follows_the_background_heartbeat(farm: FaultFarm) -> None:
    assert farm.background is not None
    assert farm.readyz().json()["checks"]["event_consumer"] == "ok"
    farm.background.kill()
    wait_until(lambda: farm.readyz().status_code == 503, 15, "/readyz to answer 503", interval=0.5,
               ignore=(httpx.HTTPError,))
    assert farm.readyz().json()["checks"]["event_consumer"].startswith("error")
    farm.background.start()
    wait_until(farm.readyz_ok, 30, "/readyz to answer 200", interval=0.5, ignore=(httpx.HTTPError,))


def test_metrics_add_up_every_coordinator_process(farm: FaultFarm) -> None:
    """``/metrics`` answers the sum of both HTTP processes and the background process, whichever is asked."""
    operator = farm.create_key("metrics", "standard", operator=True)
    token = farm.create_key("voices", "standard")

    def voices_counted() -> list[float]:
        counts = []
        for _ in range(6):  # a new connection each: either process may answer
            with httpx.Client(base_url=farm.url, headers={"Authorization": f"Bearer {operator}"}, timeout=10) as c:
                body = c.get("/metrics").text
            counts.append(sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                              if line.startswith("talkfarm_http_requests_total{")
                              and 'route="/v1/voices"' in line and 'status="200"' in line))
        return counts

    before = voices_counted()
    assert len(set(before)) == 1, before  # the same total from every process
    for _ in range(10):
        with httpx.Client(base_url=farm.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            assert client.get("/v1/voices").status_code == 200
    assert voices_counted() == [before[0] + 10] * 6
    with httpx.Client(base_url=farm.url, headers={"Authorization": f"Bearer {operator}"}, timeout=10) as client:
        body = client.get("/metrics").text
    assert "talkfarm_queue_depth_messages{" in body  # the queue collector still answers
