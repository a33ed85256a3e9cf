"""Splitting a request into stage subtasks: the one place where jobs are admitted and published.

``JobService.submit`` runs after the request passed admission checks. In order:
it answers from the video cache when it can (publishing nothing); checks that the
broker and the job store answer (503 ``broker_unavailable`` / ``store_unavailable``
before anything is written); stores the inputs; writes the job row with its
deadline and what to publish; publishes the first stage (a streamed ``speak`` job
is cut into sentences here, one TTS subtask each:
``pipeline.dispatch.publish_sentences``); and marks the row published. A job whose
publication fails is removed again and the client gets a 503: it was never
accepted. A coordinator that stops between the row and the publication leaves the
row unpublished, and the sweeper (``coordinator.maintenance``) publishes it. A streamed ``speak``
job's sentences each say something (``speech_sentences``: a pause or an emoji is never a
segment of its own); the row keeps the written text and, beside it, what is said of it
(``spoken_text``). The messages name texts by artifact key only (``contracts.job_texts``):
the job's context (typed text, history, persona) and a streamed ``speak`` job's sentences
are stored as artifacts before the row is written.
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
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import redis
from sqlalchemy.exc import SQLAlchemyError

from cache.keys import request_key
from cache.store import Cache
from contracts.artifacts import ArtifactStore
from contracts.job_texts import JobContext, JobTexts, upgrade_legacy_payload
from contracts.payload import JobPayload, Mode, Turn, plan_for
from contracts.settings import Settings
from contracts.text.spoken import speech_sentences, to_spoken
from coordinator.auth import Caller
from coordinator.errors import ApiError
from coordinator.observe import current_trace
from coordinator.personas import resolve_persona
from coordinator.store.models import ArtifactRow, JobRow
from coordinator.store.repo import TERMINAL, JobStore
from pipeline.broker import Backlog
from pipeline.cancel import CancelFlags
from pipeline.catalog import StageCatalog
from pipeline.dispatch import publish_sentences, publish_stage
from pipeline.stages import job_deadline_seconds

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
    job_id: str | None = None  # None: a new ID (an Idempotency-Key chooses it before the submit)


@dataclass(frozen=True)
class Submitted:
    job_id: str
    session_id: str
    status: str
    cached: bool


def stage_digests(catalog: StageCatalog, plan: Sequence[str]) -> dict[str, str] | None:
    """The offer digest of each stage of ``plan``; None while a stage has published no offer."""
    offers = catalog.offers(require=plan)
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

    def submit(self, req: JobRequest, who: Caller) -> Submitted:
        persona = resolve_persona(self.store, req.session_id, req.avatar_id, who)
        voice = req.voice or persona.voice
        session_id = req.session_id or str(uuid.uuid4())
        job_id = req.job_id or str(uuid.uuid4())
        plan = plan_for(req.mode, req.audio is not None)
        stream = req.mode != "lipsync" and (self.settings.stream_replies if req.stream is None else req.stream)

        if req.portrait is not None:
            portrait_key = self.artifacts.key_of(req.portrait, req.portrait_ext)
        elif persona.portrait_key is not None:
            portrait_key = persona.portrait_key  # a saved avatar: stored already
        else:
            raise ApiError(422, "portrait_required", "a `portrait` image file or an `avatar` ID is required")
        audio_key = self.artifacts.key_of(req.audio, req.audio_ext) if req.audio is not None else None

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
        job = JobRow(id=job_id, owner_id=who.key_id, session_id=session_id, mode=req.mode, status="queued",
                     text=req.text, spoken_text=spoken_text, language=req.language, voice=voice,
                     portrait_key=portrait_key,
                     audio_key=audio_key, cache_key=key)

        hit = self.cache.get_media(key) if key is not None else None
        if hit is not None:
            return self._from_cache(job, self._store_inputs(req), hit.data, hit.meta)

        if sentences is not None and not sentences:  # nothing to say was refused at admission (422)
            sentences = [req.text or ""]
        self._check_backlog(plan, stream, len(sentences) if sentences else self.settings.llm.max_reply_sentences)
        self._check_store()
        inputs = self._store_inputs(req)
        context = None
        if req.mode != "lipsync":
            context = JobContext.new(req.text, [Turn(**t) for t in history],  # type: ignore[arg-type]
                                     persona.system_prompt)
        context_key, sentence_keys, texts = self._store_texts(context, sentences)
        job.created_at = datetime.now(timezone.utc)
        payload = JobPayload(job_id=job_id, session_id=session_id, mode=req.mode, plan=plan,
                             portrait_key=portrait_key, audio_key=audio_key, context_key=context_key,
                             language=req.language, voice=voice, cache_key=key, stage_digests=digests or {},
                             face_index=req.face_index, stream=stream,
                             traceparent=trace.traceparent if (trace := current_trace()) else None,
                             priority=who.limits.priority, accepted_at=job.created_at.timestamp())
        deadline = job_deadline_seconds(self.settings, plan, stream)
        job.deadline_at = job.created_at + timedelta(seconds=deadline) if deadline else None
        job.dispatch = {"payload": payload.model_dump(mode="json"), "sentence_keys": sentence_keys,
                        "priority": payload.priority}
        self.store.create_job(job, plan, inputs + texts)
        try:
            publish_job(payload, sentence_keys, self.settings)
        except Exception as e:
            log.exception("could not publish job %s", job_id)
            self.store.forget_job(job_id)  # never accepted: the client is told to try again
            raise ApiError(503, "broker_unavailable", "the message broker is unavailable; try again") from e
        self.store.mark_published(job_id, (plan[0], "queued", {"stream": stream}))  # one commit for both
        return Submitted(job_id, session_id, "queued", cached=False)

    def _store_inputs(self, req: JobRequest) -> list[ArtifactRow]:
        inputs: list[ArtifactRow] = []
        for data, ext, kind in ((req.portrait, req.portrait_ext, "portrait"), (req.audio, req.audio_ext, "audio")):
            if data is not None:
                stored = self.artifacts.put_bytes(data, ext)
                inputs.append(ArtifactRow(key=stored.key, kind=kind, size=stored.size))
        return inputs

    def _store_texts(self, context: JobContext | None,
                     sentences: list[str] | None) -> tuple[str | None, list[str] | None, list[ArtifactRow]]:
        """The job's context artifact and a streamed ``speak`` job's sentences: their keys, and their rows."""
        if context is None:
            return None, None, []
        context_key = JobTexts.write_context(self.artifacts, context)
        texts = JobTexts(self.artifacts, context_key, context)
        sentence_keys = [texts.put(sentence) for sentence in sentences] if sentences is not None else None
        named = [(context_key, "context"), *((key, "text") for key in sentence_keys or [])]
        rows = [ArtifactRow(key=k, kind=kind, size=self.artifacts.path(k).stat().st_size) for k, kind in named]
        return context_key, sentence_keys, rows

    def check_in_flight(self, who: Caller) -> None:
        """429 ``too_many_jobs`` when the key has its tier's number of jobs that have not ended."""
        if who.key_id and self.store.jobs_in_flight(who.key_id) >= who.limits.max_jobs_in_flight:
            raise ApiError(429, "too_many_jobs",
                           f"this key has {who.limits.max_jobs_in_flight} jobs that have not ended; wait for one",
                           headers={"Retry-After": "5"})

    def _check_backlog(self, plan: Sequence[str], stream: bool, sentences: int) -> None:
        """503 when the broker does not answer, or when this job would take any stage of its plan over the
        admission backlog: a streamed reply puts up to one message per sentence on the TTS and animation queues."""
        try:
            depths = {stage: self.backlog.depth(stage) for stage in plan}
        except Exception as e:
            log.warning("the broker does not answer: %s", e)
            raise ApiError(503, "broker_unavailable", "the message broker is unavailable; try again",
                           headers={"Retry-After": "5"}) from e
        limit = self.settings.broker.admission_backlog
        for stage, depth in depths.items():
            adds = sentences if stream and stage in ("tts", "animation") else 1
            if depth + adds > limit:
                raise ApiError(503, "backlog_full", f"the {stage} queue is full; try again later",
                               headers={"Retry-After": str(self.settings.broker.backlog_retry_after_seconds)})

    def _check_store(self) -> None:
        try:
            self.store.ping()
        except SQLAlchemyError as e:
            raise ApiError(503, "store_unavailable", "the job store is unavailable; try again") from e

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
        try:
            self.flags.cancel(job_id)
        except redis.RedisError as e:
            raise ApiError(503, "results_unavailable",
                           "the job cannot be cancelled now (its flags are unreachable); try again") from e
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


def publish_job(payload: JobPayload, sentence_keys: list[str] | None, settings: Settings) -> None:
    """Publish a job's first subtasks: each sentence's TTS subtask of a streamed ``speak`` job (the keys of the
    sentences' text artifacts), else its first stage."""
    if sentence_keys is not None:
        publish_sentences(payload, sentence_keys, settings)
    else:
        publish_stage(payload, settings)


def dispatched(dispatch: dict[str, Any], artifacts: ArtifactStore) -> tuple[JobPayload, list[str] | None]:
    """What a job row says to publish (``JobRow.dispatch``): the first stage's payload and a streamed ``speak``
    job's sentence keys. The texts of a row of the previous version (in the payload; the sentences themselves)
    are stored as artifacts here (``contracts.job_texts.upgrade_legacy_payload``, for one version)."""
    payload = JobPayload.model_validate(upgrade_legacy_payload(dispatch["payload"], artifacts))
    sentence_keys = dispatch.get("sentence_keys")
    if sentence_keys is None and dispatch.get("sentences") is not None:
        texts = JobTexts(artifacts, payload.context_key)
        sentence_keys = [texts.put(sentence) for sentence in dispatch["sentences"]]
    return payload, sentence_keys
