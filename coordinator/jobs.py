"""Splitting a request into stage subtasks: the one place where jobs are admitted and published.

``JobService.submit`` runs after the request passed admission checks: it stores
the inputs, answers from the video cache when it can (publishing nothing),
otherwise writes the job row and publishes the first stage. A streamed ``speak``
job is cut into sentences here (``speech_sentences``: each says something, so a
pause or an emoji is never a segment of its own) and each sentence's TTS subtask
is published (``pipeline.dispatch.publish_sentences``). The job row keeps the
written text and, beside it, what is said of it (``spoken_text``).
``JobService.cancel`` stops a job's remaining subtasks. Blocking; the API calls
these through ``asyncio.to_thread``.

A request's cache key covers its inputs and the offers of the stages of its
plan (``pipeline.catalog``: backends, versions, output-shaping settings, as the
running workers publish them). Until every stage of the plan has published an
offer, the job is neither looked up in nor stored into the cache.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from cache.keys import request_key
from cache.store import Cache
from contracts.artifacts import ArtifactStore
from contracts.payload import JobPayload, Mode, Turn, plan_for
from contracts.settings import Settings
from contracts.text.spoken import speech_sentences, to_spoken
from coordinator.errors import ApiError
from coordinator.personas import resolve_persona
from coordinator.store.models import ArtifactRow, JobRow
from coordinator.store.repo import TERMINAL, JobStore
from pipeline.broker import Backlog
from pipeline.cancel import CancelFlags
from pipeline.catalog import StageCatalog
from pipeline.dispatch import publish_sentences, publish_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRequest:
    mode: Mode
    portrait: bytes | None  # None: the `avatar_id`'s portrait, else the session's avatar
    portrait_ext: str
    session_id: str | None
    audio: bytes | None = None
    audio_ext: str = "bin"
    text: str | None = None
    language: str | None = None
    voice: str | None = None
    stream: bool | None = None  # None: the `stream_replies` setting decides
    face_index: int = 0  # the face to animate, 0 the largest
    avatar_id: str | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: str
    session_id: str
    status: str
    cached: bool


def stage_digests(catalog: StageCatalog, plan: Sequence[str]) -> dict[str, str] | None:
    """The offer digest of each stage of ``plan``; None while a stage has published no offer."""
    offers = catalog.offers()
    if any(stage not in offers for stage in plan):
        return None
    return {stage: offers[stage].digest for stage in plan}


class JobService:
    def __init__(self, settings: Settings, store: JobStore, artifacts: ArtifactStore, cache: Cache,
                 catalog: StageCatalog) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = artifacts
        self.cache = cache
        self.catalog = catalog
        self.backlog = Backlog(settings)
        self.flags = CancelFlags.from_settings(settings)

    def submit(self, req: JobRequest) -> Submitted:
        persona = resolve_persona(self.store, req.session_id, req.avatar_id)
        voice = req.voice or persona.voice
        session_id = req.session_id or str(uuid.uuid4())
        job_id = str(uuid.uuid4())
        plan = plan_for(req.mode, req.audio is not None)
        stream = req.mode != "lipsync" and (self.settings.stream_replies if req.stream is None else req.stream)

        inputs: list[ArtifactRow] = []
        if req.portrait is not None:
            portrait = self.artifacts.put_bytes(req.portrait, req.portrait_ext)
            portrait_key = portrait.key
            inputs.append(ArtifactRow(key=portrait.key, kind="portrait", size=portrait.size))
        elif persona.portrait_key is not None:
            portrait_key = persona.portrait_key  # a saved avatar: stored already
        else:
            raise ApiError(422, "portrait_required", "a `portrait` image file or an `avatar` ID is required")
        audio_key = None
        if req.audio is not None:
            audio = self.artifacts.put_bytes(req.audio, req.audio_ext)
            audio_key = audio.key
            inputs.append(ArtifactRow(key=audio.key, kind="audio", size=audio.size))

        history = self.store.history(session_id, self.settings.llm.history_turns) if req.mode == "chat" else []
        digests = stage_digests(self.catalog, plan)
        key = None
        if digests is not None:
            key = request_key(req.mode, portrait_key, audio_key or req.text or "",
                              {"language": req.language, "voice": voice, "stream": stream,
                               "system_prompt": persona.system_prompt, "face": req.face_index}, history, digests)
        sentences = speech_sentences(req.text or "", req.language) if stream and req.mode == "speak" else None
        spoken_text = None
        if req.mode == "speak" and req.text is not None:
            spoken_text = " ".join(to_spoken(part, req.language).text for part in sentences or [req.text])
        job = JobRow(id=job_id, session_id=session_id, mode=req.mode, status="queued", text=req.text,
                     spoken_text=spoken_text, language=req.language, voice=voice, portrait_key=portrait_key,
                     audio_key=audio_key, cache_key=key)

        hit = self.cache.get_media(key) if key is not None else None
        if hit is not None:
            return self._from_cache(job, inputs, hit.data, hit.meta)

        if self.backlog.depth(plan[0]) >= self.settings.broker.admission_backlog:
            raise ApiError(503, "backlog_full", f"the {plan[0]} queue is full; try again later")
        self.store.create_job(job, plan, inputs)
        payload = JobPayload(job_id=job_id, session_id=session_id, mode=req.mode, plan=plan,
                             portrait_key=portrait_key, audio_key=audio_key, text=req.text,
                             language=req.language, voice=voice, cache_key=key, stage_digests=digests or {},
                             face_index=req.face_index, history=[Turn(**t) for t in history],  # type: ignore[arg-type]
                             stream=stream, system_prompt=persona.system_prompt)
        try:
            if sentences is not None:
                publish_sentences(payload, sentences or [payload.text or ""], self.settings)
            else:
                publish_stage(payload, self.settings)
        except Exception as e:
            log.exception("could not publish job %s", job_id)
            self.store.mark_failed(job_id, "broker_unavailable", "the job could not be queued")
            raise ApiError(503, "broker_unavailable", "the message broker is unavailable") from e
        self.store.add_event(job_id, plan[0], "queued", {"stream": stream})
        return Submitted(job_id, session_id, "queued", cached=False)

    def cancel(self, job_id: str) -> str:
        """Stop the job's remaining subtasks; returns the job's status after the call.

        The cancel flag is set before the store says ``cancelled``: every stage task checks it
        before it starts, so once this returns no further subtask of the job runs.
        """
        found = self.store.get_job(job_id)
        if found is None:
            raise ApiError(404, "job_not_found", f"no job {job_id}")
        if found[0].status in TERMINAL:
            raise ApiError(409, "job_finished", f"job {job_id} has already ended ({found[0].status})")
        self.flags.cancel(job_id)
        if not self.store.mark_cancelled(job_id):
            status = (self.store.get_job(job_id) or found)[0].status
            raise ApiError(409, "job_finished", f"job {job_id} has already ended ({status})")
        return "cancelled"

    def _from_cache(self, job: JobRow, inputs: list[ArtifactRow],
                    video: bytes, meta: dict[str, Any]) -> Submitted:
        stored = self.artifacts.put_bytes(video, "mp4")
        job.status, job.cached, job.video_key = "succeeded", True, stored.key
        job.transcript, job.reply = meta.get("transcript"), meta.get("reply")
        job.spoken_reply = to_spoken(job.reply, job.language).text if job.reply else None
        job.video_seconds = meta.get("video_seconds")
        job.finished_at = datetime.now(timezone.utc)
        self.store.create_job(job, [], inputs + [ArtifactRow(key=stored.key, kind="video", size=stored.size)])
        self.store.add_event(job.id, "cache", "completed", {"video_key": stored.key, "cached": True})
        return Submitted(job.id, job.session_id, "succeeded", cached=True)
