"""Bad input: a 4xx with {code, message} (or a failed job with a code); no worker dies; nothing else changes.

On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest

from coordinator.store.repo import JobStore, make_engine
from tests.conftest import wav_of
from tests.e2e.stores import farm_on_each_store  # noqa: F401  (the ``farm`` fixture, on each store)
from tests.farm import Farm

pytestmark = pytest.mark.e2e


def store_counts(farm: Farm) -> dict[str, int]:
    return JobStore(make_engine(farm.settings.db_url)).counts()


def artifact_files(farm: Farm) -> set[str]:
    root = farm.settings.artifact_dir
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def post(farm: Farm, files: dict, data: dict) -> tuple[int, dict]:
    with farm.client() as client:
        answer = client.post("/v1/jobs", files=files, data=data)
    return answer.status_code, answer.json()


def png_without_face() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(1)
    gradient = np.linspace(0, 255, 320 * 240 * 3).reshape(240, 320, 3).astype(np.uint8)
    image = Image.fromarray(np.clip(gradient + rng.integers(0, 20, gradient.shape), 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_refusals_change_nothing(farm: Farm, portrait_bytes, speak):
    portrait = {"portrait": ("p.png", portrait_bytes)}
    speech = speak("Hello there.")
    cases = [
        ("missing portrait", {}, {"mode": "speak", "text": "hi"}, 422, "portrait_required"),
        ("not an image", {"portrait": ("p.png", b"this is not an image" * 50)}, {"mode": "speak", "text": "hi"},
         415, "bad_image"),
        ("truncated image", {"portrait": ("p.png", portrait_bytes[:5000])}, {"mode": "speak", "text": "hi"},
         415, "bad_image"),
        ("corrupt audio", {**portrait, "audio": ("q.wav", b"RIFF\x00\x00garbage" * 40)}, {"mode": "chat"},
         415, "bad_audio"),
        ("truncated audio", {**portrait, "audio": ("q.wav", speech[:30])}, {"mode": "chat"}, 415, "bad_audio"),
        ("empty audio", {**portrait, "audio": ("q.wav", b"")}, {"mode": "chat"}, 422, "empty_audio"),
        ("zero-sample wav", {**portrait, "audio": ("q.wav", wav_of(np.zeros(0), 16000))}, {"mode": "lipsync"},
         422, "empty_audio"),
        ("silence only", {**portrait, "audio": ("q.wav", wav_of(np.zeros(32000), 16000))}, {"mode": "chat"},
         422, "no_speech"),
        ("too long audio", {**portrait, "audio": ("q.wav", wav_of(np.full(16000 * 31, 0.1), 16000))},
         {"mode": "lipsync"}, 422, "audio_too_long"),
        ("empty text", portrait, {"mode": "speak", "text": "   "}, 422, "empty_text"),
        ("text over the limit", portrait, {"mode": "speak", "text": "word " * 100}, 422, "text_too_long"),
        ("unknown mode", portrait, {"mode": "sing", "text": "hi"}, 422, "bad_mode"),
        ("speak without text", portrait, {"mode": "speak"}, 422, "text_required"),
        ("unknown session", portrait, {"mode": "speak", "text": "hi", "session_id": str(uuid.uuid4())},
         404, "session_not_found"),
        ("malformed session", portrait, {"mode": "speak", "text": "hi", "session_id": "../etc"},
         422, "bad_session_id"),
        ("upload over the limit", {"portrait": ("p.png", b"\x89PNG" + b"0" * (4 * 1024 * 1024))},
         {"mode": "speak", "text": "hi"}, 413, "upload_too_large"),
    ]
    before, files_before = store_counts(farm), artifact_files(farm)
    for name, files, data, status, code in cases:
        got_status, body = post(farm, files, data)
        assert (got_status, body.get("code")) == (status, code), f"{name}: {got_status} {body}"
        assert isinstance(body.get("message"), str) and body["message"], name
    assert store_counts(farm) == before
    assert artifact_files(farm) == files_before


def test_unknown_job_is_404(farm: Farm):
    with farm.client() as client:
        for path in (f"/v1/jobs/{uuid.uuid4()}", f"/v1/jobs/{uuid.uuid4()}/video",
                     f"/v1/jobs/{uuid.uuid4()}/events", "/v1/jobs/not-a-uuid"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["code"] == "job_not_found"


def test_no_face_fails_in_the_worker_and_the_farm_goes_on(farm: Farm, portrait_bytes):
    with farm.client() as client:
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": "Is anybody there?"},
                             files={"portrait": ("empty.png", png_without_face())})
        assert answer.status_code == 202
        job = farm.wait_job(answer.json()["job_id"])
        assert job["status"] == "failed"
        assert job["error"]["code"] == "no_face" and job["error"]["message"]
        assert [s["status"] for s in job["stages"]] == ["succeeded", "failed"]
        assert client.get(f"/v1/jobs/{job['job_id']}/video").json()["code"] == "job_failed"

        # The worker that refused the portrait is alive and serves the next job.
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": "Still here."},
                             files={"portrait": ("p.png", portrait_bytes)})
        assert farm.wait_job(answer.json()["job_id"])["status"] == "succeeded"
    assert farm.process.poll() is None
    assert "exited with" not in farm.log()


def test_speechless_audio_fails_in_the_asr_worker_and_the_farm_goes_on(farm: Farm, portrait_bytes, speak):
    """Audio that is not silent (so admission takes it) but holds no speech: the ASR stage says no_speech."""
    rng = np.random.default_rng(7)
    speechless = {
        "noise only": np.clip(0.3 * rng.standard_normal(3 * 16000), -1, 1),
        "room hiss": 0.01 * rng.standard_normal(3 * 16000),
    }
    with farm.client() as client:
        for name, samples in speechless.items():
            files = {"portrait": ("p.png", portrait_bytes), "audio": ("q.wav", wav_of(samples, 16000))}
            answer = client.post("/v1/jobs", data={"mode": "chat"}, files=files)
            assert answer.status_code == 202, (name, answer.json())
            job = farm.wait_job(answer.json()["job_id"])
            assert job["status"] == "failed", name
            assert job["error"]["code"] == "no_speech" and job["error"]["message"], (name, job["error"])
            assert [s["status"] for s in job["stages"]] == ["failed", "skipped", "skipped", "skipped"], name
            assert job["transcript"] is None and job["detected_language"] is None

        # The ASR worker that refused them transcribes the next question.
        answer = client.post("/v1/jobs", data={"mode": "chat"},
                             files={"portrait": ("p.png", portrait_bytes), "audio": ("q.wav", speak("Are you awake?"))})
        job = farm.wait_job(answer.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        assert "awake" in job["transcript"].lower()
    assert farm.process.poll() is None
    assert "exited with" not in farm.log()
