"""The ASR task: the job's audio artifact in, transcript and language out."""

from __future__ import annotations

from typing import Any

from celery import Task

from workers.artifacts import ArtifactStore
from workers.asr.base import SAMPLE_RATE
from workers.audio import decode_audio
from workers.celery_app import TASK_NAMES, app
from workers.errors import PermanentError
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import get_settings
from workers.stage import run_stage


def _transcribe(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    if job.audio_key is None:
        raise PermanentError("the asr stage needs an audio artifact", code="bad_payload")
    store = ArtifactStore(get_settings().artifact_dir)
    audio = decode_audio(store.path(job.audio_key), SAMPLE_RATE)
    result = backend_for("asr").transcribe(audio, language=job.language)
    output = job.with_outputs(transcript=result.text, detected_language=result.language)
    return output, {
        "transcript": result.text,
        "language": result.language,
        "language_probability": round(result.language_probability, 3),
    }


@app.task(name=TASK_NAMES["asr"], bind=True)
def transcribe(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "asr", payload, _transcribe)
