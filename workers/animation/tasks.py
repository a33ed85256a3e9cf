"""The animation task: portrait and speech artifacts in, the MP4 artifact out.

A video already rendered from the same portrait, speech, backend and settings
is taken from the video cache instead of rendered again. The finished video is
stored under its render key and under the request key the coordinator chose, so
that a repeated request is answered without publishing any task.
"""

from __future__ import annotations

from pathlib import Path
from functools import lru_cache
from typing import Any

from celery import Task

from cache.keys import render_key
from cache.video import VideoCache
from workers.animation.base import RenderRequest
from workers.artifacts import ArtifactStore
from workers.audio import decode_audio
from workers.celery_app import TASK_NAMES, app
from workers.errors import PermanentError
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import Settings, get_settings
from workers.stage import run_stage

SPEECH_RATE = 24_000


@lru_cache(maxsize=1)
def video_cache() -> VideoCache:
    """One cache client (and connection pool) per worker process, not one per task."""
    return VideoCache.from_settings(get_settings())


def render_settings(settings: Settings) -> dict[str, Any]:
    return {"fps": settings.animation.fps, "max_side": settings.animation.max_side}


def _render(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    speech_key = job.speech_key or job.audio_key
    if speech_key is None:
        raise PermanentError("the animation stage needs speech audio", code="bad_payload")
    backend = backend_for("animation")
    cache = video_cache()
    key = render_key(job.portrait_key, speech_key, backend.name, backend.version, render_settings(settings))

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
                output=output, text=job.reply or job.text,
            ))
            video = store.put_file(output, "mp4")
        meta = {"video_seconds": round(result.seconds, 3), "frames": result.frames,
                "width": result.width, "height": result.height}
        video_bytes = store.read_bytes(video.key)
        cache.put(key, video_bytes, meta)

    summary = {**meta, "video_key": video.key, "transcript": job.transcript, "reply": job.reply}
    if job.cache_key:
        cache.put(job.cache_key, video_bytes, summary)
    return job.with_outputs(video_key=video.key), summary


@app.task(name=TASK_NAMES["animation"], bind=True)
def render(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "animation", payload, _render)
