"""Splitting a request into stage subtasks: the one place where jobs are admitted and published.

``JobService.submit`` runs after the request passed admission checks: it stores
the inputs, answers from the video cache when it can (publishing nothing),
otherwise writes the job row and publishes the first stage. Blocking; the API
calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from cache.keys import request_key
from cache.video import VideoCache
from coordinator.errors import ApiError
from coordinator.store.models import ArtifactRow, JobRow
from coordinator.store.repo import JobStore
from workers.artifacts import ArtifactStore
from workers.celery_app import app as celery_app
from workers.dispatch import publish_stage
from workers.payload import STAGES, JobPayload, Mode, Turn, plan_for
from workers.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRequest:
    mode: Mode
    portrait: bytes
    portrait_ext: str
    session_id: str | None
    audio: bytes | None = None
    audio_ext: str = "bin"
    text: str | None = None
    language: str | None = None
    voice: str | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: str
    session_id: str
    status: str
    cached: bool


def stage_fingerprint(settings: Settings, plan: Sequence[str]) -> dict[str, Any]:
    """What, besides the inputs, decides the video: each stage's backend, model and shaping settings."""
    shaping = {
        "asr": ("backend", "model", "beam_size"),
        "llm": ("backend", "model", "max_new_tokens", "temperature", "top_p", "system_prompt"),
        "tts": ("backend", "voice", "sample_rate"),
        "animation": ("backend", "fps", "max_side"),
    }
    return {stage: {f: getattr(settings.stage(stage), f) for f in shaping[stage]} for stage in plan}


class Backlog:
    """Queue depth of the stage queues, read from the broker at most once a second."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._depth: dict[str, int] = {}
        self._read_at = 0.0

    def depth(self, stage: str) -> int:
        if time.monotonic() - self._read_at > 1.0:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=self._settings.broker.connect_timeout)
                channel = conn.default_channel
                for queue in STAGES:
                    name = self._settings.queue_name(queue)
                    try:
                        self._depth[queue] = channel.queue_declare(name, passive=True).message_count
                    except Exception:  # not declared yet: no worker has started
                        channel = conn.channel()
                        self._depth[queue] = 0
            self._read_at = time.monotonic()
        return self._depth.get(stage, 0)


class JobService:
    def __init__(self, settings: Settings, store: JobStore, artifacts: ArtifactStore, cache: VideoCache) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = artifacts
        self.cache = cache
        self.backlog = Backlog(settings)

    def submit(self, req: JobRequest) -> Submitted:
        if req.session_id is not None and self.store.get_session(req.session_id) is None:
            raise ApiError(404, "session_not_found", f"no session {req.session_id}")
        session_id = req.session_id or str(uuid.uuid4())
        job_id = str(uuid.uuid4())
        plan = plan_for(req.mode, req.audio is not None)

        portrait = self.artifacts.put_bytes(req.portrait, req.portrait_ext)
        inputs = [ArtifactRow(key=portrait.key, kind="portrait", size=portrait.size)]
        audio_key = None
        if req.audio is not None:
            audio = self.artifacts.put_bytes(req.audio, req.audio_ext)
            audio_key = audio.key
            inputs.append(ArtifactRow(key=audio.key, kind="audio", size=audio.size))

        history = self.store.history(session_id, self.settings.llm.history_turns) if req.mode == "chat" else []
        key = request_key(req.mode, portrait.key, audio_key or req.text or "",
                          {"language": req.language, "voice": req.voice}, history,
                          stage_fingerprint(self.settings, plan))
        job = JobRow(id=job_id, session_id=session_id, mode=req.mode, status="queued", text=req.text,
                     language=req.language, voice=req.voice, portrait_key=portrait.key,
                     audio_key=audio_key, cache_key=key)

        hit = self.cache.get(key)
        if hit is not None:
            return self._from_cache(job, inputs, hit.video, hit.meta)

        if self.backlog.depth(plan[0]) >= self.settings.broker.admission_backlog:
            raise ApiError(503, "backlog_full", f"the {plan[0]} queue is full; try again later")
        self.store.create_job(job, plan, inputs)
        payload = JobPayload(job_id=job_id, session_id=session_id, mode=req.mode, plan=plan,
                             portrait_key=portrait.key, audio_key=audio_key, text=req.text,
                             language=req.language, voice=req.voice, cache_key=key,
                             history=[Turn(**t) for t in history])  # type: ignore[arg-type]
        try:
            publish_stage(payload, self.settings)
        except Exception as e:
            log.exception("could not publish job %s", job_id)
            self.store.mark_failed(job_id, "broker_unavailable", "the job could not be queued")
            raise ApiError(503, "broker_unavailable", "the message broker is unavailable") from e
        self.store.add_event(job_id, plan[0], "queued", {})
        return Submitted(job_id, session_id, "queued", cached=False)

    def _from_cache(self, job: JobRow, inputs: list[ArtifactRow],
                    video: bytes, meta: dict[str, Any]) -> Submitted:
        stored = self.artifacts.put_bytes(video, "mp4")
        job.status, job.cached, job.video_key = "succeeded", True, stored.key
        job.transcript, job.reply = meta.get("transcript"), meta.get("reply")
        job.video_seconds = meta.get("video_seconds")
        job.finished_at = datetime.now(timezone.utc)
        self.store.create_job(job, [], inputs + [ArtifactRow(key=stored.key, kind="video", size=stored.size)])
        self.store.add_event(job.id, "cache", "completed", {"video_key": stored.key, "cached": True})
        return Submitted(job.id, job.session_id, "succeeded", cached=True)
