"""The animation task: portrait and speech artifacts in, the MP4 artifact out.

A video already rendered from the same portrait, speech, backend and settings
is taken from the video cache instead of rendered again. The finished video is
stored under its render key and under the request key the coordinator chose, so
that a repeated request is answered without publishing any task.

The backend gets the words spoken and the TTS stage's timings (a JSON artifact,
``timings_key``) when there are any, for the mouth shapes, the face to animate
(``face_index``) and the portrait's artifact key, which keys the portrait
preparation cache.

A sentence segment of a streamed reply is rendered the same way, then remuxed
to MPEG-TS and recorded as landed (``workers.streaming.finish_segment``); the
request key is filled by the assembly of the whole job, not by a segment.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Task

from cache.keys import render_key
from cache.video import VideoCache
from workers.animation.base import RenderRequest
from workers.artifacts import ArtifactNotFound, ArtifactStore
from workers.audio import decode_audio
from workers.celery_app import TASK_NAMES, app
from workers.errors import PermanentError
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import Settings, get_settings
from workers.stage import HandOn, run_stage
from workers.streaming import finish_segment
from workers.tts.base import Timing

log = logging.getLogger(__name__)

SPEECH_RATE = 24_000


@lru_cache(maxsize=1)
def video_cache() -> VideoCache:
    """One cache client (and connection pool) per worker process, not one per task."""
    return VideoCache.from_settings(get_settings())


def render_settings(settings: Settings) -> dict[str, Any]:
    return {"fps": settings.animation.fps, "max_side": settings.animation.max_side}


def spoken_text(job: JobPayload) -> str | None:
    """The words of the speech being animated: the segment's, the reply or the typed text (none in lipsync)."""
    if job.segment is not None:
        return job.segment_text
    return job.reply or job.text


def load_timings(store: ArtifactStore, key: str | None) -> tuple[Timing, ...]:
    """The TTS stage's timings artifact as ``Timing``s; an unreadable one is ignored (the text still serves)."""
    if key is None:
        return ()
    try:
        document = json.loads(store.read_bytes(key))
        kind = str(document.get("kind", "phoneme"))
        return tuple(Timing(float(item["start"]), float(item["end"]), str(item["label"]), kind)
                     for item in document.get("items", []))
    except (ArtifactNotFound, ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("ignoring the unreadable timings artifact %s: %s", key, e)
        return ()


def _render(job: JobPayload) -> tuple[JobPayload | HandOn, dict[str, Any]]:
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    speech_key = job.speech_key or job.audio_key
    if speech_key is None:
        raise PermanentError("the animation stage needs speech audio", code="bad_payload")
    backend = backend_for("animation")
    cache = video_cache()
    text = spoken_text(job)
    # What shapes this video besides portrait and speech: the face, and what the mouth follows.
    shaping = {**render_settings(settings), "face": job.face_index, "timings": job.timings_key, "text": text,
               "segment": job.segment is not None}
    key = render_key(job.portrait_key, speech_key, backend.name, backend.version, shaping)

    cached = cache.get(key)
    if cached is not None:
        video_bytes, meta = cached.video, cached.meta
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
        cache.put(key, video_bytes, meta)

    if job.segment is not None:
        return finish_segment(job, video.key, speech_key, float(meta["video_seconds"]), store, settings)
    summary = {**meta, "video_key": video.key, "transcript": job.transcript, "reply": job.reply}
    if job.cache_key:
        cache.put(job.cache_key, video_bytes, summary)
    return job.with_outputs(video_key=video.key), summary


@app.task(name=TASK_NAMES["animation"], bind=True)
def render(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "animation", payload, _render)
