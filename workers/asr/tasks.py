"""The ASR task: the job's audio artifact in, transcript (a text artifact, ``transcript_key``) and language out.

Transcripts are cached by (audio artifact key, which is the upload's SHA-256;
backend, model and decoding options; forced language) in the LRU cache Redis,
so the same recording sent again skips decoding and Whisper.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Task

from cache.store import Cache
from contracts.artifacts import ArtifactStore
from contracts.audio import decode_audio
from contracts.errors import PermanentError
from contracts.events import TEXTS
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from contracts.settings import get_settings
from pipeline.app import app
from pipeline.metrics import ASR_LATENCY
from pipeline.observe import seconds_since_publication
from pipeline.runner import Outcome, run_stage
from pipeline.runtime import loaded
from pipeline.stages import STAGES
from workers.asr.base import SAMPLE_RATE, ASRBackend, Transcription, registry


@lru_cache(maxsize=1)
def result_cache() -> Cache | None:
    """One cache client per worker process; None when ``asr.cache_ttl_seconds`` is 0."""
    settings = get_settings()
    ttl = settings.asr.cache_ttl_seconds
    return Cache.from_settings(settings, "asr", ttl) if ttl > 0 else None


def cached_transcription(backend: ASRBackend, cache: Cache | None, audio_key: str, audio_path: Path,
                         language: str | None, max_seconds: float) -> tuple[Transcription, bool]:
    """The transcript of the audio artifact ``audio_key`` (at ``audio_path``) and whether the cache had it."""
    key = backend.result_key(audio_key, language)
    entry = cache.get(key) if cache is not None else None
    result = Transcription.from_dict(entry) if entry is not None else None
    if result is not None:
        return result, True
    audio = decode_audio(audio_path, SAMPLE_RATE, max_seconds=max_seconds)
    result = backend.transcribe(audio, language=language)
    if cache is not None:
        cache.put(key, result.to_dict())
    return result, False


def _transcribe(job: JobPayload) -> Outcome:
    if job.audio_key is None:
        raise PermanentError("the asr stage needs an audio artifact", code="bad_payload")
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    backend, cache = loaded(registry), result_cache()
    result, cached = cached_transcription(backend, cache, job.audio_key,
                                          store.path(job.audio_key), job.language,
                                          settings.limits.max_audio_seconds)
    waited = seconds_since_publication()
    if waited is not None:
        ASR_LATENCY.labels(settings.asr.backend).observe(waited)
    transcript_key = JobTexts(store, job.context_key).put(result.text)
    output = job.with_outputs(transcript_key=transcript_key, detected_language=result.language)
    return Outcome(payload=output, summary={
        TEXTS: {"transcript": transcript_key},
        "language": result.language,
        "language_probability": round(result.language_probability, 3),
        "voiced_seconds": round(result.speech_seconds, 3),
        "cache_hit": cached,
        # Where the transcript is cached: deleting the session deletes that entry too.
        "transcript_cache_key": backend.result_key(job.audio_key, job.language) if cache is not None else None,
    })


@app.task(name=STAGES["asr"].task, bind=True)
def transcribe(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "asr", payload, _transcribe)
