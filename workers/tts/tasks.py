"""The TTS task: the reply (chat) or the given text (speak) in, a WAV artifact and a timings artifact out.

The text comes from the job's text artifacts (``contracts.job_texts``): the reply
(``reply_key``), the context's typed text, or a segment's sentence (``segment_text_key``).

The written text is read through the spoken-text front end (``to_spoken``) and
said piece by piece (``workers.tts.speaking``). The job's voice and language pick
the backend (``workers.tts.voices``); a run of another language goes to a voice of
that language, and a text whose main language no voice speaks fails with
``unsupported_language``. Finished pieces come from and go to the phrase cache
(``tts.phrase_cache_ttl_seconds`` 0 turns it off). The timings
(``contracts.timings``) are stored as a JSON artifact whose key goes on the
payload as ``timings_key``; the event's ``spoken_text`` (a text artifact too) is
what was said.

A sentence segment of a streamed reply (``segment`` on the payload) speaks its
sentence with half the sentence pause before it and half after, padded
to whole video frames: segments join without drift, and every seam falls in a
pause where the mouth is closed (see ``workers.animation.segments``). A segment
with nothing to say (which the coordinator and the LLM stage never cut) is that
pause alone, so it cannot fail the job.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from celery import Task

from contracts.artifacts import ArtifactStore
from contracts.audio import pad_to_frames, wav_bytes
from contracts.errors import PermanentError
from contracts.events import TEXTS
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings, get_settings
from contracts.text.spoken import to_spoken
from contracts.timings import encode_timings, timings_document
from pipeline.app import app
from pipeline.runner import Outcome, run_stage
from pipeline.stages import STAGES
from workers.tts.base import Speech
from workers.tts.phrases import PhraseCache
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


def _synthesize(job: JobPayload) -> Outcome:
    language = job.language or job.detected_language
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    texts = JobTexts(store, job.context_key)
    text = texts.words(job)
    catalog, cache = _process_helpers(settings)
    spoken = to_spoken(text or "", language)
    name = catalog.route(job.voice, spoken.language)
    if spoken.has_speech:
        speech = catalog.say(spoken, job.voice, cache)
    elif job.segment is not None:
        speech = Speech(np.zeros(0, dtype=np.float32), settings.tts.sample_rate)
    else:
        raise PermanentError("there is no text to speak", code="empty_text")
    samples, timings = speech.samples, speech.timings
    if job.segment is not None:
        half = np.zeros(int(settings.tts.sentence_pause_seconds * speech.sample_rate / 2), dtype=np.float32)
        samples = pad_to_frames(np.concatenate([half, samples, half]), speech.sample_rate, settings.animation.fps)
        timings = tuple(t.shifted(len(half) / speech.sample_rate) for t in timings)
    seconds = len(samples) / speech.sample_rate
    artifact = store.put_bytes(wav_bytes(samples, speech.sample_rate), "wav")
    document = timings_document(timings, speech.timings_from_model, seconds)
    timings_key = store.put_bytes(encode_timings(document), "json").key if document is not None else None
    output = job.with_outputs(speech_key=artifact.key, speech_seconds=round(seconds, 3), timings_key=timings_key)
    return Outcome(summary={"speech_key": artifact.key, "speech_seconds": round(seconds, 3),
                            "timings_key": timings_key, "tts_backend": name,
                            TEXTS: {"spoken_text": texts.put(spoken.text)}},
                   payload=output)


@app.task(name=STAGES["tts"].task, bind=True)
def synthesize(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "tts", payload, _synthesize)
