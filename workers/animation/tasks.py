"""The animation task: portrait and speech artifacts in, the MP4 artifact out.

A video already rendered from the same portrait, speech, backend and settings
is taken from the video cache instead of rendered again. The finished video is
stored under its render key and under the request key the coordinator chose, so
that a repeated request is answered without publishing any task.
"""

from __future__ import annotations

from pathlib import Path
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


def video_cache(settings: Settings) -> VideoCache:
    return VideoCache(settings.redis.cache_url, settings.redis.results_url,
                      settings.video_cache_ttl_seconds, settings.redis.socket_timeout)


def render_settings(settings: Settings) -> dict[str, Any]:
    return {"fps": settings.animation.fps, "max_side": settings.animation.max_side}


def _render(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    speech_key = job.speech_key or job.audio_key
    if speech_key is None:
        raise PermanentError("the animation stage needs speech audio", code="bad_payload")
    backend = backend_for("animation")
    cache = video_cache(settings)
    key = render_key(job.portrait_key, speech_key, backend.name, backend.version, render_settings(settings))

    cached = cache.get(key)
    if cached is not None:
        video = store.put_bytes(cached.video, "mp4")
        meta = cached.meta
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
        cache.put(key, store.read_bytes(video.key), meta)

    summary = {**meta, "video_key": video.key, "transcript": job.transcript, "reply": job.reply}
    if job.cache_key:
        cache.put(job.cache_key, store.read_bytes(video.key), summary)
    return job.with_outputs(video_key=video.key), summary


@app.task(name=TASK_NAMES["animation"], bind=True)
def render(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "animation", payload, _render)
