"""Repeats are served from the video cache without a task, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest
from kombu import Connection

from pipeline.stages import STAGE_NAMES as STAGES
from tests.e2e.stores import farm_on_each_store  # noqa: F401  (the ``farm`` fixture, on each store)
from tests.e2e.test_farm_modes import fetch_video, submit
from tests.farm import Farm

pytestmark = pytest.mark.e2e
# The first hits of a new video race to insert its row; not every round meets the race, so several do.
HIT_ROUNDS = 8


@contextmanager
def stage_publish_spy(farm: Farm) -> Iterator[Callable]:
    """Counts every message published to any stage queue while the block runs."""
    settings = farm.settings
    with Connection(settings.broker.url) as conn:
        channel = conn.channel()
        name = f"{settings.queue_prefix}spy-{time.time_ns()}"
        channel.queue_declare(name, exclusive=True, auto_delete=True)
        for stage in STAGES:
            channel.queue_bind(name, settings.queue_name("talkfarm.stages"), routing_key=stage)

        def count() -> int:
            time.sleep(1.0)  # let the broker route anything in flight
            n = 0
            while channel.basic_get(name, no_ack=True) is not None:
                n += 1
            return n

        yield count


def test_repeat_is_served_from_the_cache_without_a_task(farm: Farm, portrait_bytes, tmp_path):
    form = {"mode": "speak", "text": "This sentence is rendered only once."}
    with farm.client() as client:
        before = client.get("/v1/stats").json()["video_cache"]
    with stage_publish_spy(farm) as published:
        first = farm.wait_job(submit(farm, portrait_bytes, **form)["job_id"])
        assert first["status"] == "succeeded" and not first["cached"]
        assert published() >= 1  # the spy does see a real job's tasks

        start = time.perf_counter()
        again = submit(farm, portrait_bytes, **form)
        elapsed = time.perf_counter() - start
        assert again["cached"] and again["status"] == "succeeded"
        assert published() == 0, "a cached request published a task"
    with farm.client() as client:
        repeat = client.get(f"/v1/jobs/{again['job_id']}").json()
        after = client.get("/v1/stats").json()["video_cache"]
    assert repeat["status"] == "succeeded" and repeat["cached"]
    assert after["hits"] == before["hits"] + 1
    assert after["misses"] >= before["misses"] + 1
    a = fetch_video(farm, first["job_id"], tmp_path / "a.mp4").read_bytes()
    b = fetch_video(farm, again["job_id"], tmp_path / "b.mp4").read_bytes()
    assert a == b
    assert elapsed < 5.0


def test_a_repeated_streamed_chat_is_served_from_the_cache(farm: Farm, portrait_bytes):
    form = {"mode": "chat", "text": "What colour is the sky on a clear day?"}
    first = farm.wait_job(submit(farm, portrait_bytes, **form)["job_id"])
    assert first["status"] == "succeeded" and first["stream"]
    again = submit(farm, portrait_bytes, **form)
    assert again["cached"] and again["status"] == "succeeded"


def test_identical_requests_at_once_are_all_served_from_the_cache(farm: Farm, portrait_bytes):
    """Twenty cache hits at once store the same video: each is answered, with the same video."""
    with farm.client() as client:
        for round_no in range(HIT_ROUNDS):
            form = {"mode": "speak", "text": f"Cached at once, round {round_no}."}
            first = farm.wait_job(submit(farm, portrait_bytes, **form)["job_id"])
            assert first["status"] == "succeeded", first["error"]
            with ThreadPoolExecutor(max_workers=20) as pool:
                answers = list(pool.map(lambda _: client.post("/v1/jobs", data=form,
                                                              files={"portrait": ("p.png", portrait_bytes)}),
                                        range(20)))
            assert [a.status_code for a in answers] == [202] * 20, [a.text[:200] for a in answers]
            assert all(a.json()["cached"] for a in answers)
            videos = {client.get(f"/v1/jobs/{a.json()['job_id']}/video").content for a in answers}
            assert len(videos) == 1
