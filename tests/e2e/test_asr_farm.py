"""The ASR stage in the farm: a browser's webm/opus question, the detected language on the job, the result cache."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from contracts.audio import decode_audio, resample
from coordinator.store.repo import JobStore, make_engine
from tests.e2e.test_asr_speech import word_error_rate
from tests.farm import Farm
from tests.unit.test_audio import encode

pytestmark = pytest.mark.e2e

# Whisper base heard this in 12 of 12 of Piper's (random) takes through webm/opus; it hears "Australia"
# as "Bosch, Traelia" in some takes.
QUESTION = "Can you tell me where the nearest train station is?"


def media_recorder_webm(wav: bytes) -> bytes:
    """The question as Chrome's MediaRecorder sends it: 48 kHz mono Opus in a live WebM stream."""
    samples = resample(decode_audio(wav, 22050), 22050, 48000)
    return encode("webm", "libopus", 48000, 1, samples=samples[None, :], options={"live": "1"})


def mirrored(png: bytes) -> bytes:
    out = io.BytesIO()
    ImageOps.mirror(Image.open(io.BytesIO(png))).save(out, format="PNG")
    return out.getvalue()


def asr_summary(farm: Farm, job_id: str) -> dict:
    events = JobStore(make_engine(farm.settings.db_url)).events_after(job_id, 0)
    return next(e.data for e in events if e.stage == "asr" and e.kind == "finished")


def test_browser_question_detected_language_and_cache(farm: Farm, portrait_bytes, speak):
    webm = media_recorder_webm(speak(QUESTION))
    assert webm[:4] == b"\x1a\x45\xdf\xa3"
    with farm.client() as client:
        first = client.post("/v1/jobs", data={"mode": "chat"},
                            files={"portrait": ("p.png", portrait_bytes), "audio": ("q.webm", webm, "audio/webm")})
        assert first.status_code == 202, first.json()
        job = farm.wait_job(first.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        # Whisper on CPU may mishear a word of a synthetic voice (its temperature fallback samples).
        assert word_error_rate([(QUESTION, job["transcript"])]) <= 0.1, job["transcript"]
        assert job["detected_language"] == "en" == job["language"]
        assert 0.5 < job["detected_language_probability"] <= 1.0
        summary = asr_summary(farm, job["job_id"])
        assert summary["cache_hit"] is False
        assert summary["language_probability"] == job["detected_language_probability"]
        assert 1.0 < summary["voiced_seconds"] < 5.0

        # The same recording with another portrait: a new video, but the transcript comes from the ASR cache.
        hits = client.get("/v1/stats").json()["asr_cache"]["hits"]
        second = client.post("/v1/jobs", data={"mode": "chat"},
                             files={"portrait": ("m.png", mirrored(portrait_bytes)),
                                    "audio": ("q.webm", webm, "audio/webm")})
        again = farm.wait_job(second.json()["job_id"])
        assert again["status"] == "succeeded", again["error"]
        assert again["cached"] is False  # not served from the video cache
        assert asr_summary(farm, again["job_id"])["cache_hit"] is True
        assert client.get("/v1/stats").json()["asr_cache"]["hits"] == hits + 1  # this farm's counts
        assert (again["transcript"], again["detected_language"], again["detected_language_probability"]) == \
            (job["transcript"], job["detected_language"], job["detected_language_probability"])


def test_forced_language_is_reported_with_certainty(farm: Farm, portrait_bytes, speak):
    with farm.client() as client:
        answer = client.post("/v1/jobs", data={"mode": "chat", "language": "en"},
                             files={"portrait": ("p.png", portrait_bytes), "audio": ("q.wav", speak("Good morning."))})
        job = farm.wait_job(answer.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["detected_language"] == "en" and job["detected_language_probability"] == 1.0
    assert np.isclose(asr_summary(farm, job["job_id"])["language_probability"], 1.0)
