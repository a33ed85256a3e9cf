"""The animation tasks: portrait and speech artifacts in, the MP4 artifact out; and a streamed job's assembly.

A video already rendered from the same portrait, speech, backend and settings
is taken from the video cache instead of rendered again. The finished video is
stored under its render key and under the request key the coordinator chose, so
that a repeated request is answered without publishing any task.

The backend gets the words spoken (a text artifact: ``contracts.job_texts``) and
the TTS stage's timings (a JSON artifact, ``timings_key``) when there are any, for
the mouth shapes, the face to animate (``face_index``) and the portrait's artifact
key, which keys the portrait preparation cache.

A sentence segment of a streamed reply is rendered the same way, then remuxed to
MPEG-TS and reported as landed (``workers.animation.segments``); the request key
is filled by the ``assemble`` task that joins the segments, not by a segment.

The finished event names the job's transcript and reply by their text artifacts'
keys; the video cache entry, which the coordinator answers repeats from, keeps the
texts themselves (the cache Redis holds cached texts by design: ASR transcripts,
FAQ answers).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Task

from cache.keys import render_key
from cache.store import video_cache
from contracts.artifacts import ArtifactNotFound, ArtifactStore
from contracts.audio import decode_audio
from contracts.errors import PermanentError
from contracts.events import TEXTS
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings, get_settings
from contracts.timings import Timing, decode_timings
from pipeline.app import app
from pipeline.runner import Outcome, run_stage
from pipeline.runtime import loaded
from pipeline.stages import ASSEMBLE, STAGES
from workers.animation.base import RenderRequest, registry
from workers.animation.encoder import SPEECH_RATE
from workers.animation.segments import assemble_job, finish_segment

log = logging.getLogger(__name__)


def render_settings(settings: Settings) -> dict[str, Any]:
    return {"fps": settings.animation.fps, "max_side": settings.animation.max_side}


def load_timings(store: ArtifactStore, key: str | None) -> tuple[Timing, ...]:
    """The TTS stage's timings artifact as ``Timing``s; a missing or unreadable one gives none."""
    if key is None:
        return ()
    try:
        return decode_timings(store.read_bytes(key))
    except ArtifactNotFound:
        log.warning("ignoring the missing timings artifact %s", key)
        return ()


def _render(job: JobPayload) -> Outcome:
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    speech_key = job.speech_key or job.audio_key
    if speech_key is None:
        raise PermanentError("the animation stage needs speech audio", code="bad_payload")
    backend = loaded(registry)
    cache = video_cache(settings)
    texts = JobTexts(store, job.context_key)
    text = texts.words(job)
    # What shapes this video besides portrait and speech: the face, and what the mouth follows.
    shaping = {**render_settings(settings), "face": job.face_index, "timings": job.timings_key, "text": text,
               "segment": job.segment is not None}
    key = render_key(job.portrait_key, speech_key, backend.name, backend.version, shaping)

    cached = cache.get_media(key)
    if cached is not None:
        video_bytes, meta = cached.data, cached.meta
        video = store.put_bytes(video_bytes, "mp4")
    else:
        audio = decode_audio(store.path(speech_key), SPEECH_RATE)
        with store.scratch_dir() as scratch:
            output = Path(scratch) / "render.mp4"
            result = backend.render(RenderRequest(
                portrait=store.read_bytes(job.portrait_key), audio=audio, sample_rate=SPEECH_RATE,
                output=output, text=text, timings=load_timings(store, job.timings_key),
                face_index=job.face_index, portrait_key=job.portrait_key, segment=job.segment is not None,
            ))
            video = store.put_file(output, "mp4")
        meta = {"video_seconds": round(result.seconds, 3), "frames": result.frames,
                "width": result.width, "height": result.height}
        video_bytes = store.read_bytes(video.key)
        cache.put_media(key, video_bytes, meta)

    if job.segment is not None:
        finished = finish_segment(job, video.key, speech_key, float(meta["video_seconds"]), store)
        # The render's cache key goes in the event, so deleting the session deletes the cached render too.
        return Outcome(summary={**finished.summary, "render_key": key}, segment=finished.segment,
                       segment_data=finished.segment_data)
    summary = {**meta, "video_key": video.key, "render_key": key}
    if job.cache_key:
        cache.put_media(job.cache_key, video_bytes, {**summary, "transcript": texts.read(job.transcript_key),
                                                     "reply": texts.read(job.reply_key)})
    return Outcome(summary={**summary, TEXTS: {"transcript": job.transcript_key, "reply": job.reply_key}},
                   payload=job.with_outputs(video_key=video.key))


def _assemble(job: JobPayload) -> Outcome:
    return assemble_job(job, get_settings())


@app.task(name=STAGES["animation"].task, bind=True)
def render(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "animation", payload, _render)


@app.task(name=ASSEMBLE.task, bind=True)
def assemble(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, ASSEMBLE.verb, payload, _assemble, limits=ASSEMBLE.stage)
