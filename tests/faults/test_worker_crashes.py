"""Workers that die: SIGKILL mid-task in every stage, and a task that kills its worker every time.

One farm for the module, on private services, with stand-ins that take ``DELAY``
seconds per call (time to kill a worker mid-task) and a TTS stand-in that kills its
own process whenever its text says "poison". Each test restores what it broke.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from contracts.settings import Settings
from pipeline.deliveries import DeliveryCounter
from pipeline.dispatch import task_id
from tests.faults.jobs import (
    await_jobs,
    check_video,
    job_events,
    stage_status,
    submit,
    unique_portrait,
    unique_question,
)
from tests.faults.process import wait_until
from tests.faults.rig import Rig, private_farm

pytestmark = [pytest.mark.integration, pytest.mark.faults]

DELAY = 2.5  # seconds of every stand-in call
KNOBS = {"TALKFARM_STANDIN_DELAY": json.dumps({stage: DELAY for stage in ("asr", "llm", "tts", "animation")}),
         "TALKFARM_STANDIN_POISON": json.dumps({"tts": "poison"})}
DEADLINE = 90.0  # seconds for the jobs of a test to end once its fault is over


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with private_farm(tmp_path_factory.mktemp("crashes"), KNOBS) as rig:
        yield rig


@pytest.fixture
def rig(shared: Rig) -> Rig:
    shared.heal()
    return shared


def deliveries(settings: Settings, job_id: str, stage: str) -> int:
    """How many times the (first attempt of the) job's task of ``stage`` was delivered."""
    return DeliveryCounter.from_settings(settings).deliveries(task_id(job_id, stage))


@pytest.mark.parametrize("stage", ["asr", "llm", "tts", "animation"])
def test_worker_killed_mid_task_in_each_stage(rig: Rig, stage: str, tmp_path: Path) -> None:
    """A pool child SIGKILLed mid-task (the main process forks another), then the whole worker SIGKILLed
    mid-task (main process and pool, as an OOM kill of its container) and started again: both tasks are
    delivered again and both jobs succeed, each with one whole video."""
    farm, worker = rig.farm, rig.farm.workers[stage]
    with farm.client() as client:
        jobs = [submit(client, unique_portrait(), unique_question(), mode="chat", stream="false") for _ in range(2)]
        assert all(job.accepted for job in jobs), [job.text for job in jobs]
        first, second = (job.job_id for job in jobs)

        wait_until(lambda: stage_status(client, first, stage) == "running", 60, f"{stage} of the first job to start",
                   detail=farm.logs)
        old = worker.pool()
        worker.kill_pool_child()
        worker.wait_pool_replaced(old)

        # The stage serves one task at a time: the second job's starts once the first one's is done again.
        wait_until(lambda: stage_status(client, second, stage) == "running", 60,
                   f"{stage} of the second job to start", detail=farm.logs)
        worker.kill()
        worker.start()

        report = await_jobs(client, [first, second], DEADLINE)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 2}, report.summary()
        for job in report.succeeded():
            check_video(client, job, tmp_path)
            assert [kind for kind, _ in job_events(client, job["job_id"])].count("completed") == 1
    # The kills landed mid-task: each task was delivered twice, neither more.
    assert [deliveries(farm.settings, job_id, stage) for job_id in (first, second)] == [2, 2]


def test_poison_task_is_dead_lettered_and_its_job_fails(rig: Rig, tmp_path: Path) -> None:
    """A TTS task that kills its worker on every delivery: after ``max_deliveries`` deliveries the job fails
    with ``stage_crashed`` and the message waits in the dead-letter queue, while a healthy job beside it
    succeeds. ``dlq purge`` drops a letter; after a fixed TTS worker is deployed, ``dlq replay`` runs the
    other one again and its job succeeds."""
    farm = rig.farm
    limit = farm.settings.broker.max_deliveries
    with farm.client() as client:
        poisoned = [submit(client, unique_portrait(), mode="speak", text=f"A poison pill, number {i}.",
                           stream="false") for i in range(2)]
        healthy = submit(client, unique_portrait(), mode="speak", text="Nothing wrong with this one.",
                         stream="false")
        assert all(job.accepted for job in (*poisoned, healthy)), [job.text for job in (*poisoned, healthy)]
        kept, purged = (job.job_id for job in poisoned)

        report = await_jobs(client, [kept, purged, healthy.job_id], DEADLINE + 3 * limit * DELAY)
        report.assert_settled(allowed_codes={"stage_crashed"})
        assert report.jobs[healthy.job_id]["status"] == "succeeded", report.summary()
        assert report.failure_codes() == {"stage_crashed": 2}, report.summary()
        check_video(client, report.jobs[healthy.job_id], tmp_path)
        for job_id in (kept, purged):
            assert deliveries(farm.settings, job_id, "tts") == limit + 1
            tts = next(s for s in report.jobs[job_id]["stages"] if s["stage"] == "tts")
            assert (tts["status"], tts["error_code"]) == ("failed", "stage_crashed"), tts

        letters = farm.admin("dlq", "list")
        assert "2 dead letters" in letters, letters
        for job_id in (kept, purged):
            assert f"{task_id(job_id, 'tts')} " in letters and f"job {job_id}" in letters, letters

        assert "purged 1 dead letters" in farm.admin("dlq", "purge", "--job", purged)
        letters = farm.admin("dlq", "list")
        assert "1 dead letters" in letters and f"job {kept}" in letters and purged not in letters, letters

        # The operator deploys a TTS worker without the crash and replays what is left.
        farm.workers["tts"].restart_with({"TALKFARM_STANDIN_POISON": "{}"})
        assert "replayed 1 dead letters" in farm.admin("dlq", "replay", "--stage", "tts")
        report = await_jobs(client, [kept, purged], DEADLINE)
        report.assert_settled(allowed_codes={"stage_crashed"})
        assert report.jobs[kept]["status"] == "succeeded", report.summary()
        assert report.jobs[purged]["status"] == "failed", report.summary()
        check_video(client, report.jobs[kept], tmp_path)
        assert "0 dead letters" in farm.admin("dlq", "list")
