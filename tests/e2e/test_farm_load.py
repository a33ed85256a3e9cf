"""Jobs at once: every one is accepted and completes with its own output, none is lost (SQLite and PostgreSQL).

The first jobs with a portrait the store has not seen insert its artifact row at the
same moment; the portraits here are fresh for that reason.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import fresh_portrait
from tests.e2e.stores import farm_on_each_store  # noqa: F401  (the ``farm`` fixture, on each store)
from tests.farm import Farm
from tests.faults.jobs import Submission, await_jobs, submit

pytestmark = pytest.mark.e2e

WORDS = ["apple", "river", "candle", "mountain", "violin", "garden", "pencil", "ocean", "window", "rocket",
         "basket", "forest", "ladder", "island", "mirror", "tiger", "planet", "bridge", "castle", "meadow"]
ROUNDS = 8  # a race between two inserts is not met every time: several new portraits, each sent 20 times at once


def test_twenty_concurrent_jobs_all_complete(farm: Farm, portrait_bytes):
    portrait = fresh_portrait(portrait_bytes)

    def submit_one(word: str) -> str:
        with farm.client() as client:
            answer = client.post("/v1/jobs", data={"mode": "speak", "text": f"I said {word}."},
                                 files={"portrait": ("p.png", portrait)})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["job_id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        job_ids = list(pool.map(submit_one, WORDS))
    assert len(set(job_ids)) == 20

    jobs = [farm.wait_job(job_id, timeout=600) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 20, [j["error"] for j in jobs]
    assert [j["text"] for j in jobs] == [f"I said {w}." for w in WORDS]
    videos = set()
    with farm.client() as client:
        for job in jobs:
            video = client.get(f"/v1/jobs/{job['job_id']}/video")
            assert video.status_code == 200
            videos.add(video.content)
    assert len(videos) == 20, "two jobs share one output"


def test_a_new_portrait_sent_twenty_times_at_once_is_accepted_every_time(farm: Farm, portrait_bytes):
    """Admission, and cancel: each accepted job is cancelled at once, so its cancel meets its first events
    in the store; every one must be accepted, and end."""
    answers: list[Submission] = []
    with farm.client() as client:
        for round_no in range(ROUNDS):
            portrait = fresh_portrait(portrait_bytes)
            with ThreadPoolExecutor(max_workers=20) as pool:
                batch = list(pool.map(lambda i: submit(client, portrait, mode="speak", text=f"Round {round_no}."),
                                      range(20)))
            for answer in batch:
                if answer.accepted:
                    client.delete(f"/v1/jobs/{answer.job_id}")
            answers += batch
        refused = [(a.status, a.text[:200]) for a in answers if not a.accepted]
        report = await_jobs(client, [a.job_id for a in answers if a.accepted], timeout=120)
    assert not refused and not report.lost and not report.stuck, \
        f"{len(refused)} of {len(answers)} refused: {refused[:3]}; {report.summary()}"
    report.assert_settled()
