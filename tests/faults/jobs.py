"""Submit jobs, wait until every accepted one has ended, and check a video the way a client would.

``await_jobs`` polls ``GET /v1/jobs/{id}`` until each job is ``succeeded``,
``failed`` or ``cancelled`` or the deadline passes; the coordinator may be down or
answering errors meanwhile (a fault test restarts things), which only means "not
yet". At the deadline a job whose last answer was ``job_not_found`` is *lost* (it
was accepted, the store does not know it) and any other unfinished one is *stuck*.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import av
import httpx
import numpy as np

from tests.conftest import DATA, fresh_portrait, wav_of
from tests.media import ffprobe, moov_before_mdat

TERMINAL = ("succeeded", "failed", "cancelled")


def unique_portrait() -> bytes:
    """The test portrait with one pixel changed at random: no cache of the farm (video, render, prepared
    portrait) has seen it, so every stage does its work."""
    return fresh_portrait((DATA / "portrait.png").read_bytes())


def unique_question() -> bytes:
    """A WAV of a tone of random length (1 to 2 s): the ASR stand-in hears a question numbered after its
    length, so neither the transcript cache nor the LLM's answers cache serves it."""
    rate = 16_000
    t = np.arange(random.randrange(rate, 2 * rate)) / rate
    return wav_of(0.3 * np.sin(2 * np.pi * 330.0 * t), rate)


@dataclass(frozen=True)
class Submission:
    """The answer to one ``POST /v1/jobs``: 202 and a job, or a refusal (``status`` 0: no answer at all)."""

    status: int
    body: dict[str, Any] | None  # None: the answer was not JSON (a plain-text 500, a dropped connection)
    text: str

    @property
    def accepted(self) -> bool:
        """Whether the job was accepted (202 with a job ID)."""
        return self.status == 202 and self.body is not None and "job_id" in self.body

    @property
    def job_id(self) -> str:
        """The accepted job's ID (raises for a refusal)."""
        if not self.accepted or self.body is None:
            raise ValueError(f"not accepted: {self.status} {self.text[:200]}")
        return str(self.body["job_id"])

    @property
    def code(self) -> str | None:
        """The refusal's error code (None for an accepted job or an answer without one)."""
        return None if self.accepted or self.body is None else self.body.get("code")


def submit(client: httpx.Client, portrait: bytes, audio: bytes | None = None, **form: str) -> Submission:
    """``POST /v1/jobs`` with the portrait, optional audio and form fields (``mode``, ``text``, ...)."""
    files = {"portrait": ("portrait.png", portrait)}
    if audio is not None:
        files["audio"] = ("speech.wav", audio)
    try:
        answer = client.post("/v1/jobs", data=form, files=files)
    except httpx.HTTPError as e:
        return Submission(0, None, repr(e))
    try:
        body = answer.json()
    except ValueError:
        body = None
    return Submission(answer.status_code, body if isinstance(body, dict) else None, answer.text)


def stage_status(client: httpx.Client, job_id: str, stage: str) -> str | None:
    """The status of one stage of a job, as ``GET /v1/jobs/{id}`` shows it (None: no such stage)."""
    job = client.get(f"/v1/jobs/{job_id}").json()
    return next((s["status"] for s in job["stages"] if s["stage"] == stage), None)


def job_events(client: httpx.Client, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A job's events as a client sees them on ``GET /v1/jobs/{id}/events``: (kind, data) in order, up to
    the ``done`` frame (included). Read it for a job that has ended: the stream replays and closes."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind, data = "", ""
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as answer:
        assert answer.status_code == 200, f"{job_id} events: {answer.status_code}"
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                data = line[len("data: "):]
            elif not line and kind:
                events.append((kind, json.loads(data)))
                if kind == "done":
                    break
                kind, data = "", ""
    return events


@dataclass
class JobReport:
    """Where every accepted job ended: the last view of each, and the ones lost or stuck."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def statuses(self) -> Counter[str]:
        """Jobs by their last status."""
        return Counter(job["status"] for job in self.jobs.values())

    def failure_codes(self) -> Counter[str]:
        """Failed jobs by error code (``None`` for a failure without one)."""
        return Counter(str((job.get("error") or {}).get("code")) for job in self.jobs.values()
                       if job["status"] == "failed")

    def succeeded(self) -> list[dict[str, Any]]:
        """The views of the jobs that succeeded."""
        return [job for job in self.jobs.values() if job["status"] == "succeeded"]

    def summary(self) -> str:
        """One line for a failure message: statuses, failure codes, the lost and the stuck ones."""
        stuck = {job_id: self.jobs.get(job_id, {}).get("status", "no answer") for job_id in self.stuck}
        return (f"{dict(self.statuses())}, failed by code {dict(self.failure_codes())}, "
                f"lost {self.lost}, stuck {stuck}, after {self.seconds:.1f} s")

    def assert_settled(self, allowed_codes: Iterable[str] | None = None) -> None:
        """No job lost or stuck, every failure has a code (one of ``allowed_codes`` when given)."""
        assert not self.lost and not self.stuck, self.summary()
        codes = self.failure_codes()
        assert "None" not in codes, f"a failed job has no error code: {self.summary()}"
        if allowed_codes is not None:
            unexpected = set(codes) - set(allowed_codes)
            assert not unexpected, f"failure codes {unexpected} not in {sorted(allowed_codes)}: {self.summary()}"


def await_jobs(client: httpx.Client, job_ids: Iterable[str], timeout: float, interval: float = 0.25) -> JobReport:
    """Poll each job until it has ended or ``timeout`` seconds pass; never raises for a slow or absent farm."""
    started = time.monotonic()
    deadline = started + timeout
    report = JobReport()
    pending = list(dict.fromkeys(job_ids))
    unknown: set[str] = set()
    while pending:
        for job_id in list(pending):
            try:
                answer = client.get(f"/v1/jobs/{job_id}")
            except httpx.HTTPError:
                continue
            if answer.status_code == 404:
                unknown.add(job_id)
                continue
            if answer.status_code != 200:
                continue
            unknown.discard(job_id)
            report.jobs[job_id] = answer.json()
            if report.jobs[job_id]["status"] in TERMINAL:
                pending.remove(job_id)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    report.lost = [job_id for job_id in pending if job_id in unknown]
    report.stuck = [job_id for job_id in pending if job_id not in unknown]
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class VideoCheck:
    """What ``check_video`` found in a video it accepted."""

    path: Path
    duration: float
    video_frames: int
    audio_frames: int


def check_video(client: httpx.Client, job: dict[str, Any], folder: Path, fps: int = 25,
                tolerance: float = 0.25) -> VideoCheck:
    """Fetch a succeeded job's MP4 whole and check it: H.264 and AAC, faststart, every frame decodes,
    as many video frames as its duration holds, and the duration the job reports (within ``tolerance`` s)."""
    answer = client.get(f"/v1/jobs/{job['job_id']}/video")
    assert answer.status_code == 200, f"{job['job_id']}: {answer.status_code} {answer.text[:300]}"
    assert answer.headers["content-type"] == "video/mp4", answer.headers["content-type"]
    assert int(answer.headers["content-length"]) == len(answer.content), "a truncated download"
    path = folder / f"{job['job_id']}.mp4"
    path.write_bytes(answer.content)
    probe = ffprobe(path)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac"), probe
    assert moov_before_mdat(path), "the MP4 is not faststart"
    with av.open(str(path)) as container:
        video_frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio_frames = sum(1 for _ in container.decode(audio=0))
    assert audio_frames > 0, "no audio decodes"
    assert abs(video_frames - probe.duration * fps) <= 2, (video_frames, probe.duration)
    expected = job.get("video_seconds") or job.get("speech_seconds")
    if expected is not None:
        assert abs(probe.duration - float(expected)) <= tolerance, (probe.duration, expected)
    return VideoCheck(path, probe.duration, video_frames, audio_frames)
