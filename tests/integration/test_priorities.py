"""Tiers and the backlog at the coordinator, through real RabbitMQ: a coordinator with no worker, so jobs wait.

* A higher tier's job overtakes the lower tiers' jobs queued before it (message priorities).
* A job that has waited is published again one level higher (aging), and only one copy runs.
* Past the admission backlog the coordinator answers 503 ``backlog_full`` and stores nothing.
* Flower asks for its login.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from kombu import Connection

from contracts.payload import JobPayload
from coordinator.store.repo import JobStore, make_engine
from pipeline.app import stage_queues
from pipeline.claims import TaskClaims
from pipeline.dispatch import aged_priority
from tests.farm import Farm, coordinator_alone, create_key, free_port

pytestmark = pytest.mark.integration
PORTRAIT = (Path(__file__).parents[1] / "data" / "portrait.png").read_bytes()


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    with coordinator_alone(tmp_path_factory.mktemp("coordinator"), {
        "TALKFARM_BROKER__ADMISSION_BACKLOG": "6",
        "TALKFARM_STREAM_REPLIES": "false",  # one TTS message a job
        "TALKFARM_RELIABILITY__SWEEP_INTERVAL_SECONDS": "0.5",
        "TALKFARM_AUTH__PRIORITY_AGING_SECONDS": "3600",
        # Two tiers that differ in priority only, so no other quota stops the queue from filling.
        "TALKFARM_AUTH__TIERS": json.dumps({"free": {"priority": 1, "max_jobs_in_flight": 50},
                                            "vip": {"priority": 8, "max_jobs_in_flight": 50}}),
        "TALKFARM_AUTH__DEFAULT_TIER": "free",
    }) as farm:
        yield farm


def submit(farm: Farm, token: str, text: str) -> httpx.Response:
    with farm.client(token=token) as client:
        return client.post("/v1/jobs", data={"mode": "speak", "text": text},
                           files={"portrait": ("p.png", PORTRAIT)})


def drain(farm: Farm, stage: str = "tts") -> list[JobPayload]:
    """Every message of a stage queue, in the order a worker would receive them."""
    taken: list[JobPayload] = []
    with Connection(farm.settings.broker.url) as conn:
        [declared] = [q for q in stage_queues(farm.settings) if q.routing_key == stage]
        queue = conn.SimpleQueue(declared, no_ack=True)
        try:
            while True:
                try:
                    message = queue.get(block=True, timeout=1)
                except queue.Empty:
                    return taken
                taken.append(JobPayload.model_validate(message.decode()[0][0]))
        finally:
            queue.close()


def test_a_higher_tier_overtakes_queued_lower_ones(coordinator: Farm) -> None:
    free, vip = create_key(coordinator, "free-user", "free"), create_key(coordinator, "vip-user", "vip")
    low = [submit(coordinator, free, f"Low priority number {i}.").json()["job_id"] for i in range(3)]
    high = submit(coordinator, vip, "High priority, please.").json()["job_id"]
    order = [p.job_id for p in drain(coordinator)]
    assert order == [high, *low]  # the vip job first; the free ones in the order they came


def test_a_waiting_job_rises_and_one_copy_runs(coordinator: Farm) -> None:
    job = JobPayload(job_id="j", session_id="s", mode="speak", plan=["tts"], portrait_key="a" * 64 + ".png",
                     priority=1, accepted_at=1000.0)
    settings = coordinator.settings.model_copy(deep=True)
    settings.auth.priority_aging_seconds = 60
    assert aged_priority(job, settings, now=1000.0) == 1
    assert aged_priority(job, settings, now=1000.0 + 3 * 60) == 4  # a level a minute
    assert aged_priority(job, settings, now=1000.0 + 3600) == settings.broker.max_priority  # never past the top
    # The sweeper's copy and the first copy of one task: the first to start claims it, the other is dropped.
    claims = TaskClaims.from_settings(coordinator.settings)
    task = f"job-{time.time_ns()}.tts"
    assert claims.claim(task, 0, "copy-b") is True
    assert claims.claim(task, 0, "copy-a") is False
    assert claims.claim(task, 0, "copy-b") is True  # a redelivery of the claiming copy runs
    assert claims.claim(task, 1, "copy-a") is True  # a Celery retry is another attempt


def test_past_the_backlog_the_job_is_refused_and_nothing_is_stored(coordinator: Farm) -> None:
    vip = create_key(coordinator, "backlog-user", "vip")
    store = JobStore(make_engine(coordinator.settings.db_url))
    accepted = []
    for i in range(coordinator.settings.broker.admission_backlog):
        answer = submit(coordinator, vip, f"Filling the queue, {i}.")
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["job_id"])
    time.sleep(1.1)  # the coordinator reads the queue depths at most once a second
    before = store.counts()
    refused = submit(coordinator, vip, "One too many.")
    assert refused.status_code == 503 and refused.json()["code"] == "backlog_full"
    assert int(refused.headers["Retry-After"]) > 0
    assert store.counts() == before
    assert len(drain(coordinator)) == len(accepted)


def test_flower_asks_for_its_login(coordinator: Farm) -> None:
    port = free_port()
    env = {**coordinator.env, "FLOWER_BASIC_AUTH": "admin:s3cret"}
    flower = subprocess.Popen([sys.executable, "-m", "celery", "-A", "pipeline.app", "flower", f"--port={port}",
                               "--address=127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/api/workers"
        deadline = time.monotonic() + 60
        while True:
            try:
                anonymous = httpx.get(url, timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "Flower did not start"
                time.sleep(0.5)
        assert anonymous.status_code == 401
        login = base64.b64encode(b"admin:s3cret").decode()
        assert httpx.get(url, headers={"Authorization": f"Basic {login}"}, timeout=30).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()},
                         timeout=30).status_code == 401
    finally:
        flower.terminate()
        flower.wait(timeout=30)
    assert os.environ.get("FLOWER_UNAUTHENTICATED_API") is None
