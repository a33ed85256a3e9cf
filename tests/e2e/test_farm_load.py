"""Twenty jobs at once: every one completes with its own output, none is lost (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.stores import farm_on_each_store  # noqa: F401  (the ``farm`` fixture, on each store)
from tests.farm import Farm

pytestmark = pytest.mark.e2e

WORDS = ["apple", "river", "candle", "mountain", "violin", "garden", "pencil", "ocean", "window", "rocket",
         "basket", "forest", "ladder", "island", "mirror", "tiger", "planet", "bridge", "castle", "meadow"]


def test_twenty_concurrent_jobs_all_complete(farm: Farm, portrait_bytes):
    def submit(word: str) -> str:
        with farm.client() as client:
            answer = client.post("/v1/jobs", data={"mode": "speak", "text": f"I said {word}."},
                                 files={"portrait": ("p.png", portrait_bytes)})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["job_id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        job_ids = list(pool.map(submit, WORDS))
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
