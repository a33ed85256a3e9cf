"""RabbitMQ under the farm: restarted with jobs queued and running, gone while a stage works, a downstream
queue that refuses the hand-on, and the coordinator killed between accepting a job and publishing it.

One farm for the module, on private services, with an LLM stand-in slow enough to be
caught mid-task and a sweeper that looks every second. Each test restores what it broke.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from coordinator.store.repo import JobStore, make_engine
from tests.faults.jobs import Submission, await_jobs, check_video, job_events, stage_status, submit, unique_portrait
from tests.faults.process import wait_until
from tests.faults.rig import Rig, private_farm

pytestmark = [pytest.mark.integration, pytest.mark.faults]

KNOBS = {"TALKFARM_STANDIN_DELAY": json.dumps({"llm": 2, "tts": 0.5, "animation": 1}),
         "TALKFARM_RELIABILITY__SWEEP_INTERVAL_SECONDS": "1",
         "TALKFARM_RELIABILITY__PUBLISH_GRACE_SECONDS": "3"}
DEADLINE = 90.0  # seconds for the jobs of a test to end once its fault is over


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with private_farm(tmp_path_factory.mktemp("broker"), KNOBS) as rig:
        yield rig


@pytest.fixture
def rig(shared: Rig) -> Rig:
    shared.heal()
    return shared


def chat(client: httpx.Client, question: str) -> str:
    """Submit a typed chat job, one video at the end (not streamed); its ID."""
    job = submit(client, unique_portrait(), mode="chat", text=question, stream="false")
    assert job.accepted, job.text
    return job.job_id


def assert_all_succeeded(client: httpx.Client, job_ids: list[str], folder: Path) -> None:
    """Every job ends within the deadline, succeeded, with one whole video announced once."""
    report = await_jobs(client, job_ids, DEADLINE)
    report.assert_settled()
    assert report.statuses() == {"succeeded": len(job_ids)}, report.summary()
    for view in report.succeeded():
        check_video(client, view, folder)
        assert [kind for kind, _ in job_events(client, view["job_id"])].count("completed") == 1


def test_rabbitmq_restarted_with_jobs_queued_and_running(rig: Rig, tmp_path: Path) -> None:
    """A graceful restart of the broker while one job is in the LLM stage and others wait in its queue:
    the messages are durable, the workers and the coordinator's event consumer reconnect, every job succeeds."""
    farm = rig.farm
    with farm.client() as client:
        jobs = [chat(client, f"What happened on day {i} of the restart?") for i in range(4)]
        wait_until(lambda: stage_status(client, jobs[0], "llm") == "running", 60, "the first job's reply to start",
                   detail=farm.logs)
        assert sum(client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued" for job_id in jobs) >= 2
        rig.rabbit.restart()
        assert_all_succeeded(client, jobs, tmp_path)


def test_broker_killed_while_a_stage_works_the_hand_on_is_retried(rig: Rig, tmp_path: Path) -> None:
    """RabbitMQ is SIGKILLed while the LLM stage works: what follows the work (its ``finished`` event, the
    next stage's publish) fails and is retried until the broker is back; the task is delivered again too
    (its acknowledgement was lost), and the second copy of the next stage is dropped. The job succeeds once."""
    farm, llm = rig.farm, rig.farm.workers["llm"]
    with farm.client() as client:
        job_id = chat(client, "Can you answer through an outage?")
        wait_until(lambda: stage_status(client, job_id, "llm") == "running", 60, "the reply to start",
                   detail=farm.logs)
        retried = llm.process.logs_again("the finished event failed")
        rig.rabbit.kill()
        wait_until(retried, 60, "the hand-on to meet the outage", detail=llm.process.log_tail)
        rig.rabbit.start()
        assert_all_succeeded(client, [job_id], tmp_path)


def test_downstream_queue_refuses_the_hand_on(rig: Rig, tmp_path: Path) -> None:
    """The TTS queue refuses publishes (full, with ``reject-publish``) when the LLM stage hands on: the publish
    is retried for ``reliability.handoff_seconds``; a queue that stays full fails the job with ``queue_full``,
    one that takes messages again within that time lets the job succeed."""
    farm, llm = rig.farm, rig.farm.workers["llm"]
    llm.restart_with({"TALKFARM_RELIABILITY__HANDOFF_SECONDS": "8"})
    tts_queue = farm.settings.queue_name("tts")
    with farm.client() as client:
        rig.rabbit.fill_queue(tts_queue)
        refused = chat(client, "Is there room for my answer?")
        report = await_jobs(client, [refused], DEADLINE)
        report.assert_settled(allowed_codes={"queue_full"})
        assert report.failure_codes() == {"queue_full": 1}, report.summary()

        retried = llm.process.logs_again("publishing the next stage failed (QueueFull")
        later = chat(client, "Is there room now?")
        wait_until(retried, 60, "the hand-on to meet the full queue", detail=llm.process.log_tail)
        rig.rabbit.unfill_queue(tts_queue)
        assert_all_succeeded(client, [later], tmp_path)


def test_coordinator_killed_between_accepting_and_publishing(rig: Rig, tmp_path: Path) -> None:
    """The coordinator has written the job's row, its publish hangs (RabbitMQ's memory alarm blocks every
    publisher) and it is SIGKILLed; the broker drops the dead connection with the unread publish. The client
    got no answer, but the job is in the store: the restarted coordinator's sweeper publishes it and it succeeds."""
    farm, coordinator = rig.farm, rig.farm.coordinator
    store = JobStore(make_engine(farm.settings.db_url))
    answers: list[Submission] = []
    try:
        rig.rabbit.block_publishers()
        with farm.client(timeout=120) as client:
            post = threading.Thread(target=lambda: answers.append(
                submit(client, unique_portrait(), mode="speak", text="Lost in the post?", stream="false")))
            post.start()
            waiting = wait_until(lambda: store.unpublished(datetime.now(timezone.utc) + timedelta(hours=1)), 60,
                                 "the job's row, unpublished", detail=coordinator.process.log_tail)
            assert len(waiting) == 1, [job.id for job in waiting]
            job_id = waiting[0].id
            ports = coordinator.process.ports_connected_to(rig.rabbit.port)
            coordinator.kill()
            post.join(30)
        assert answers and not answers[0].accepted, answers
        assert rig.rabbit.close_connections_from(ports) >= 1  # the one whose publish the broker never read
        rig.rabbit.unblock_publishers()
        coordinator.start()
        with farm.client() as client:
            assert_all_succeeded(client, [job_id], tmp_path)
            queued = [data for kind, data in job_events(client, job_id) if kind == "queued"]
            assert [data.get("sweeper") for data in queued] == [True], queued
    finally:
        store.engine.dispose()
