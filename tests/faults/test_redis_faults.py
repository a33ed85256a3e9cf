"""The two Redis instances and the segment ledger: the results Redis restarted mid-stream, the cache Redis down,
a segment delivered again after the assembly was claimed.

One farm for the module, on private services, with stand-ins slow enough that a
streamed reply is still streaming when the fault comes. Each test restores what it broke.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from pipeline.deliveries import DeliveryCounter
from pipeline.dispatch import task_id
from tests.faults.jobs import await_jobs, check_video, job_events, submit, unique_portrait
from tests.faults.process import wait_until
from tests.faults.rig import Rig, private_farm
from tests.faults.taps import Tap

pytestmark = [pytest.mark.integration, pytest.mark.faults]

KNOBS = {"TALKFARM_STANDIN_DELAY": json.dumps({"llm": 1, "tts": 0.5, "animation": 2})}
DEADLINE = 90.0  # seconds for the jobs of a test to end once its fault is over


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with private_farm(tmp_path_factory.mktemp("redis"), KNOBS) as rig:
        yield rig


@pytest.fixture
def rig(shared: Rig) -> Rig:
    shared.heal()
    return shared


def segments_shown(client: httpx.Client, job_id: str) -> int:
    """How many segments of a streamed job ``GET /v1/jobs/{id}`` lists."""
    return len(client.get(f"/v1/jobs/{job_id}").json().get("segments", []))


def completed_once(client: httpx.Client, job_id: str) -> bool:
    """Whether the job's event stream holds exactly one ``completed`` event (one video made and announced)."""
    return [kind for kind, _ in job_events(client, job_id)].count("completed") == 1


def test_results_redis_restarted_mid_stream(rig: Rig, tmp_path: Path) -> None:
    """The results Redis (segment ledger, claims, cancel flags, Celery results) stops while a streamed reply is
    half rendered: landing the next segment is retried until it is back, and the job ends with its whole video."""
    farm, animation = rig.farm, rig.farm.workers["animation"]
    with farm.client() as client:
        job = submit(client, unique_portrait(), mode="chat", text="Tell me about rivers and the sea.", stream="true")
        assert job.accepted, job.text
        wait_until(lambda: segments_shown(client, job.job_id) >= 1, 60, "the first segment", detail=farm.logs)
        landing_failed = animation.process.logs_again("landing the segment failed")
        rig.results.stop()
        wait_until(landing_failed, 60,
                   "a segment to meet the outage", detail=animation.process.log_tail)
        rig.results.start()

        report = await_jobs(client, [job.job_id], DEADLINE)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 1}, report.summary()
        view = report.jobs[job.job_id]
        assert len(view["segments"]) == 3, view["segments"]
        check_video(client, view, tmp_path)
        assert completed_once(client, job.job_id)


def test_cache_redis_down_jobs_succeed_and_readyz_says_degraded(rig: Rig, tmp_path: Path) -> None:
    """Without the cache Redis (videos, transcripts, phrases, prepared portraits' index) jobs still succeed, only
    uncached; ``/readyz`` answers 200 ``degraded`` meanwhile and ``ready`` once it is back."""
    farm = rig.farm
    rig.cache.stop()
    answer = wait_until(lambda: (r := farm.readyz()).json()["status"] == "degraded" and r, 30,
                        "/readyz to say degraded", ignore=(httpx.HTTPError,))
    assert answer.status_code == 200 and answer.json()["checks"]["redis_cache"].startswith("error"), answer.text
    with farm.client() as client:
        jobs = [submit(client, unique_portrait(), mode="chat", text="What is a cache for?", stream="true"),
                submit(client, unique_portrait(), mode="speak", text="No cache today.", stream="false")]
        assert all(job.accepted for job in jobs), [job.text for job in jobs]
        report = await_jobs(client, [job.job_id for job in jobs], DEADLINE)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 2}, report.summary()
        for view in report.succeeded():
            check_video(client, view, tmp_path)
    assert farm.readyz().json()["status"] == "degraded"
    rig.cache.start()
    wait_until(lambda: farm.readyz().json()["status"] == "ready", 30, "/readyz to say ready",
               ignore=(httpx.HTTPError,))


def test_segment_delivered_again_after_the_assembly_was_claimed(rig: Rig, tmp_path: Path) -> None:
    """The last segment claims the assembly but cannot publish it (the animation queue refuses publishes) and
    its worker is SIGKILLed; an earlier segment is delivered again meanwhile; the worker comes back: the
    redelivered claimer publishes the assembly once, the other segment does not, and a segment delivered again
    after the video was made changes nothing. One ``completed`` event, one whole video, the same bytes."""
    farm, animation = rig.farm, rig.farm.workers["animation"]
    counter = DeliveryCounter.from_settings(farm.settings)
    queue = farm.settings.queue_name("animation")
    with farm.client() as client, Tap(farm.settings, "animation") as tap:
        job = submit(client, unique_portrait(), mode="speak", stream="true",
                     text="The first sentence is here. A second one follows it. The third one ends it.")
        assert job.accepted, job.text
        segments = [task_id(job.job_id, "animation", i) for i in range(3)]
        wait_until(lambda: set(segments) <= set(tap.collect()), 60, "the three segments on the animation queue",
                   detail=farm.logs)
        publish_failed = animation.process.logs_again("publishing the assembly failed")
        rig.rabbit.fill_queue(queue)
        wait_until(publish_failed, 60,
                   "the last segment to claim the assembly and fail to publish it", detail=animation.process.log_tail)
        animation.kill()
        rig.rabbit.unfill_queue(queue)
        tap.republish(segments[0])
        animation.start()

        report = await_jobs(client, [job.job_id], DEADLINE)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 1}, report.summary()
        view = report.jobs[job.job_id]
        video = check_video(client, view, tmp_path).path.read_bytes()
        assert completed_once(client, job.job_id)
        assemble = task_id(job.job_id, "assemble")
        assert [counter.deliveries(t) for t in (segments[0], segments[2], assemble)] == [2, 2, 1]

        # A segment delivered again once the video is made: it lands again, and nothing else happens.
        done_again = animation.process.logs_again(f"[{segments[1]}] succeeded")
        tap.republish(segments[1])
        wait_until(done_again, 60,
                   "the segment delivered again to be done", detail=animation.process.log_tail)
        assert counter.deliveries(segments[1]) == 2 and counter.deliveries(assemble) == 1
        assert client.get(f"/v1/jobs/{job.job_id}").json()["status"] == "succeeded"
        assert completed_once(client, job.job_id)
        assert client.get(f"/v1/jobs/{job.job_id}/video").content == video
