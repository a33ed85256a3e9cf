"""The TTS task: the reply (chat) or the given text (speak) in, a WAV artifact out."""

from __future__ import annotations

from typing import Any

from celery import Task

from workers.artifacts import ArtifactStore
from workers.audio import wav_bytes
from workers.celery_app import TASK_NAMES, app
from workers.errors import PermanentError
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import get_settings
from workers.stage import run_stage


def _synthesize(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    text = job.reply if job.mode == "chat" else job.text
    if not text or not text.strip():
        raise PermanentError("there is no text to speak", code="empty_text")
    language = job.language or job.detected_language
    speech = backend_for("tts").synthesize(text, voice=job.voice, language=language)
    store = ArtifactStore(get_settings().artifact_dir)
    artifact = store.put_bytes(wav_bytes(speech.samples, speech.sample_rate), "wav")
    seconds = round(speech.seconds, 3)
    output = job.with_outputs(speech_key=artifact.key, speech_seconds=seconds)
    return output, {"speech_key": artifact.key, "speech_seconds": seconds}


@app.task(name=TASK_NAMES["tts"], bind=True)
def synthesize(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "tts", payload, _synthesize)
