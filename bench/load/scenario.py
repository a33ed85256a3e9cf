"""The Locust users of a load run (``locust -f bench/load/scenario.py``; ``bench.load.run`` starts it).

Each simulated user does what a person at the web page does: on start it saves a
portrait as an avatar (``POST /v1/avatars``), then, with a think time before each,
asks questions: ``speak`` and typed ``chat`` jobs with its avatar's ID, and a
share of them with a portrait uploaded again (``fresh``). It follows each job by
its server-sent events (``--follow sse``; ``poll`` reads ``GET /v1/jobs/{id}``
every half second instead) until the job ends, notes when the first segment came,
and downloads the MP4 of a job that succeeded. Every submit becomes one line of
the records file (``bench.load.report.JobRecord``); every other request that
failed, one ``RequestError`` line.

Its configuration comes from the environment, ``BENCH_LOAD_CONFIG`` (JSON):
``tokens`` (API keys, handed out to users in turn), ``records`` (the records
file), ``portraits`` (image files), ``think`` ([min, max] seconds), ``chat_share``,
``fresh_share``, ``follow`` and ``job_timeout`` (seconds a user follows one job).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

from bench.load.report import JobRecord, RequestError
from coordinator.heap import freeze_startup_heap

CONFIG: dict[str, Any] = json.loads(os.environ.get("BENCH_LOAD_CONFIG", "{}"))
TOKENS: list[str] = CONFIG.get("tokens", [""])
PORTRAITS = [Path(path).read_bytes() for path in CONFIG.get("portraits", [])]
RECORDS = Path(CONFIG.get("records", "load-records.jsonl"))
TERMINAL = ("succeeded", "failed", "cancelled")
_numbers = itertools.count()
_records = RECORDS.open("a", buffering=1)  # a line each: greenlets of one process write whole lines


def record(entry: dict[str, Any]) -> None:
    _records.write(json.dumps(entry) + "\n")


@events.test_start.add_listener
def _freeze(**_: Any) -> None:
    """The measuring client's own full collections (80 to 100 ms each under load) would count in the
    latencies it records: Locust, gevent and requests are set aside as the coordinator's start-up is."""
    freeze_startup_heap()


@events.quitting.add_listener
def _close(**_: Any) -> None:
    _records.close()


def error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class TalkingUser(HttpUser):
    """A person who saved an avatar and asks it questions."""

    wait_time = between(*CONFIG.get("think", (2.0, 5.0)))

    def on_start(self) -> None:
        self.number = next(_numbers)
        self.client.headers["Authorization"] = f"Bearer {TOKENS[self.number % len(TOKENS)]}"
        self.portrait = PORTRAITS[self.number % len(PORTRAITS)]
        self.asked = 0
        self.avatar: str | None = None
        while self.avatar is None:
            with self.client.post("/v1/avatars", files={"portrait": ("face.png", self.portrait)},
                                  name="/v1/avatars", catch_response=True) as answer:
                if answer.status_code == 201:
                    self.avatar = answer.json()["avatar_id"]
                else:
                    answer.failure(f"{answer.status_code} {error_code(answer)}")
                    record({"error": asdict(RequestError(time.time(), "avatar", answer.status_code,
                                                         error_code(answer)))})
                    time.sleep(1.0)
        self.wait()  # a person who has just saved an avatar types the first question before sending it

    @task
    def ask(self) -> None:
        self.asked += 1
        kind = "chat" if random.random() < CONFIG.get("chat_share", 0.5) else "speak"
        fresh = random.random() < CONFIG.get("fresh_share", 0.1)
        tag = f"user {self.number} question {self.asked} {random.randrange(10**6)}"
        form = {"mode": kind, "text": f"Hello, this is {tag}. What do you think of the weather today?"
                if kind == "chat" else f"Good morning, {tag}. Here is a short announcement for everyone."}
        files = None
        if fresh:
            files = {"portrait": ("face.png", self.portrait)}
        else:
            form["avatar"] = str(self.avatar)
        upload = "fresh" if fresh else "avatar"
        started = time.time()
        with self.client.post("/v1/jobs", data=form, files=files, name=f"/v1/jobs [{upload}]",
                              catch_response=True) as answer:
            submit_s = time.time() - started
            job = JobRecord(t=started, kind=kind, upload=upload, submit_s=round(submit_s, 5),
                            status=answer.status_code)
            if answer.status_code == 202:
                job.job_id = answer.json()["job_id"]
            else:
                job.code = error_code(answer)
                answer.failure(f"{answer.status_code} {job.code}")
        if job.job_id is not None:
            self.follow(job, started)
            if job.outcome == "succeeded":
                self.download(job)
        record({"job": asdict(job)})

    def follow(self, job: JobRecord, started: float) -> None:
        """Until the job ends (or ``job_timeout``): its events, or its status."""
        if CONFIG.get("follow", "sse") == "sse" and self.follow_events(job, started):
            return
        deadline = started + CONFIG.get("job_timeout", 300.0)
        while time.time() < deadline:
            answer = self.client.get(f"/v1/jobs/{job.job_id}", name="/v1/jobs/{id}")
            if answer.status_code == 200:
                body = answer.json()
                if job.first_segment_s is None and body.get("segments"):
                    job.first_segment_s = round(time.time() - started, 4)
                if body["status"] in TERMINAL:
                    job.outcome = body["status"]
                    job.fail_code = (body.get("error") or {}).get("code")
                    job.e2e_s = round(time.time() - started, 4)
                    return
            time.sleep(0.5)
        job.outcome = "unfinished"

    def follow_events(self, job: JobRecord, started: float) -> bool:
        """Read the job's SSE stream to its ``done`` frame; False when it could not be followed to the end."""
        kind = ""
        with self.client.get(f"/v1/jobs/{job.job_id}/events", name="/v1/jobs/{id}/events", stream=True,
                             timeout=(10, 60), catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code} {error_code(answer)}")
                record({"error": asdict(RequestError(time.time(), "events", answer.status_code,
                                                     error_code(answer)))})
                return False
            try:
                for line in answer.iter_lines(decode_unicode=True):
                    if line.startswith("event: "):
                        kind = line[len("event: "):]
                    elif line.startswith("data: ") and kind == "segment" and job.first_segment_s is None:
                        job.first_segment_s = round(time.time() - started, 4)
                    elif line.startswith("data: ") and kind == "failed":
                        job.fail_code = json.loads(line[len("data: "):]).get("code") or job.fail_code
                    elif line.startswith("data: ") and kind == "done":
                        job.outcome = json.loads(line[len("data: "):])["status"]
                        job.e2e_s = round(time.time() - started, 4)
                        return True
            except Exception as e:  # the stream broke off: fall back to polling
                answer.failure(f"stream broke: {type(e).__name__}")
                record({"error": asdict(RequestError(time.time(), "events", 0, type(e).__name__))})
                return False
        return False

    def download(self, job: JobRecord) -> None:
        with self.client.get(f"/v1/jobs/{job.job_id}/video", name="/v1/jobs/{id}/video",
                             catch_response=True) as answer:
            if answer.status_code == 200:
                job.video_bytes = len(answer.content)
            else:
                answer.failure(f"{answer.status_code} {error_code(answer)}")
                record({"error": asdict(RequestError(time.time(), "video", answer.status_code,
                                                     error_code(answer)))})
