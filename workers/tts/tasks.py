"""The TTS task: the reply (chat) or the given text (speak) in, a WAV artifact and a timings artifact out.

The job's voice and language pick the backend (``workers.tts.voices``); finished
sentences come from and go to the phrase cache (``tts.phrase_cache_ttl_seconds``
0 turns it off). The timings (``workers.tts.speech.timings_document``) are stored
as a JSON artifact whose key goes on the payload as ``timings_key``.

A sentence segment of a streamed reply (``segment`` on the payload) speaks its
``segment_text`` with half the sentence pause before it and half after, padded
to whole video frames: segments join without drift, and every seam falls in a
pause where the mouth is closed (see ``workers.streaming``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
from celery import Task

from workers.artifacts import ArtifactStore
from workers.assembly import pad_to_frames
from workers.audio import wav_bytes
from workers.celery_app import TASK_NAMES, app
from workers.errors import PermanentError
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import Settings, get_settings
from workers.stage import run_stage
from workers.streaming import segment_summary
from workers.tts.base import TTSBackend
from workers.tts.phrases import PhraseCache
from workers.tts.speech import timings_document
from workers.tts.voices import VoiceCatalog

_lock = threading.Lock()
_catalog: VoiceCatalog | None = None
_cache: PhraseCache | None = None


def _process_helpers(settings: Settings) -> tuple[VoiceCatalog, PhraseCache | None]:
    """The voice catalog and the phrase cache of this worker process (made once)."""
    global _catalog, _cache
    with _lock:
        if _catalog is None:
            _catalog = VoiceCatalog(settings)
            if settings.tts.phrase_cache_ttl_seconds > 0:
                _cache = PhraseCache.from_settings(settings)
        return _catalog, _cache


def _synthesize(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    if job.segment is not None:
        text = job.segment_text
    else:
        text = job.reply if job.mode == "chat" else job.text
    if not text or not text.strip():
        raise PermanentError("there is no text to speak", code="empty_text")
    settings = get_settings()
    catalog, cache = _process_helpers(settings)
    language = job.language or job.detected_language
    name = catalog.route(job.voice, language)
    backend: TTSBackend = backend_for("tts", name)
    speech = backend.synthesize(text, voice=job.voice, language=language, cache=cache)
    samples = speech.samples
    lead = 0.0
    document = timings_document(speech)
    if job.segment is not None:
        half = np.zeros(int(settings.tts.sentence_pause_seconds * speech.sample_rate / 2), dtype=np.float32)
        samples = pad_to_frames(np.concatenate([half, samples, half]), speech.sample_rate, settings.animation.fps)
        lead = len(half) / speech.sample_rate
    if document is not None and lead:
        for item in document["items"]:
            item["start"], item["end"] = round(item["start"] + lead, 4), round(item["end"] + lead, 4)
        document["seconds"] = round(len(samples) / speech.sample_rate, 4)
    store = ArtifactStore(settings.artifact_dir)
    artifact = store.put_bytes(wav_bytes(samples, speech.sample_rate), "wav")
    timings_key = None
    if document is not None:
        timings_key = store.put_bytes(json.dumps(document, ensure_ascii=False).encode("utf-8"), "json").key
    seconds = round(len(samples) / speech.sample_rate, 3)
    output = job.with_outputs(speech_key=artifact.key, speech_seconds=seconds, timings_key=timings_key)
    if job.segment is not None:
        return output, {**segment_summary(speech_key=artifact.key, seconds=seconds, timings_key=timings_key),
                        "tts_backend": name}
    return output, {"speech_key": artifact.key, "speech_seconds": seconds, "timings_key": timings_key,
                    "tts_backend": name}


@app.task(name=TASK_NAMES["tts"], bind=True)
def synthesize(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "tts", payload, _synthesize)
