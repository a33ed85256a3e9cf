"""The job store's PostgreSQL stopped while jobs run, then started again.

A farm on private services with its job store in a private PostgreSQL cluster.
Workers never touch the database, so the jobs go on; their events wait in the broker
while the coordinator cannot store them, and reach the store once it is back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from contracts.artifacts import ArtifactStore
from tests.faults.jobs import await_jobs, check_video, job_events, stage_status, submit, unique_portrait
from tests.faults.process import wait_until
from tests.faults.rig import Rig, private_farm

pytestmark = [pytest.mark.integration, pytest.mark.faults]

KNOBS = {"TALKFARM_STANDIN_DELAY": json.dumps({"llm": 2, "tts": 0.5, "animation": 1})}
DEADLINE = 90.0  # seconds for the jobs to end once the database is back


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with private_farm(tmp_path_factory.mktemp("database"), KNOBS, postgres=True) as rig:
        yield rig


def test_database_down_then_back(rig: Rig, tmp_path: Path) -> None:
    """While PostgreSQL is down: a submit answers 503 ``store_unavailable`` and stores nothing, a job's view
    answers 503 too (never a plain 500), ``/readyz`` says not ready. The accepted jobs go on in the workers; once
    the cluster is back, their events are stored, every job ends succeeded, and a new job is accepted again."""
    farm, postgres, artifacts = rig.farm, rig.postgres, ArtifactStore(rig.farm.settings.artifact_dir)
    assert postgres is not None
    with farm.client() as client:
        jobs = [submit(client, unique_portrait(), mode="chat", text=f"Where is my row number {i}?", stream="false")
                for i in range(2)]
        assert all(job.accepted for job in jobs), [job.text for job in jobs]
        job_ids = [job.job_id for job in jobs]
        wait_until(lambda: stage_status(client, job_ids[0], "llm") == "running", 60, "the first reply to start",
                   detail=farm.logs)
        postgres.stop()

        portrait = unique_portrait()
        refused = submit(client, portrait, mode="speak", text="Is anyone keeping notes?", stream="false")
        assert (refused.status, refused.code) == (503, "store_unavailable"), refused.text
        assert not artifacts.exists(artifacts.key_of(portrait, "png")), "a refused submit stored its portrait"
        view = client.get(f"/v1/jobs/{job_ids[0]}")
        assert (view.status_code, view.json()["code"]) == (503, "store_unavailable"), view.text
        readyz = farm.readyz()
        assert readyz.status_code == 503 and readyz.json()["checks"]["database"].startswith("error"), readyz.text
        # The jobs go on without the store: their events reach the coordinator, which cannot keep them yet.
        wait_until(lambda: farm.readyz().json()["checks"]["event_consumer"].startswith("error"), 60,
                   "an event to meet the outage", ignore=(httpx.HTTPError,), detail=farm.logs)

        postgres.start()
        later = submit(client, unique_portrait(), mode="speak", text="Back in business.", stream="false")
        assert later.accepted, later.text
        report = await_jobs(client, [*job_ids, later.job_id], DEADLINE)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 3}, report.summary()
        for job in report.succeeded():
            check_video(client, job, tmp_path)
            assert [kind for kind, _ in job_events(client, job["job_id"])].count("completed") == 1
    wait_until(farm.readyz_ok, 30, "/readyz to answer 200 again", ignore=(httpx.HTTPError,))
