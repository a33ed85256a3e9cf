"""The TTS stage in the real farm: voices API, voice choice, the timings artifact and the phrase cache."""

from __future__ import annotations

import json

import pytest
import redis

from cache.store import stats_key
from contracts.artifacts import ArtifactStore
from tests.farm import RESULTS_URL, Farm
from workers.tts.phrases import NAMESPACE

pytestmark = pytest.mark.e2e


def submit(farm: Farm, portrait: bytes, **form: str) -> dict:
    with farm.client() as client:
        answer = client.post("/v1/jobs", data=form, files={"portrait": ("portrait.png", portrait)})
    assert answer.status_code == 202, answer.text
    return farm.wait_job(answer.json()["job_id"])


def timings_documents(farm: Farm) -> list[dict]:
    folder = ArtifactStore(farm.settings.artifact_dir).root
    return [json.loads(p.read_text(encoding="utf-8")) for p in folder.rglob("*.json")]


def test_voices_are_listed_and_unknown_ones_refused(farm: Farm, portrait_bytes: bytes) -> None:
    with farm.client() as client:
        voices = client.get("/v1/voices").json()
        refused = client.post("/v1/jobs", data={"mode": "speak", "text": "Hi.", "voice": "no-such-voice"},
                              files={"portrait": ("portrait.png", portrait_bytes)})
    assert {"name": "en_US-joe-medium", "backend": "piper", "languages": ["en"], "default": True} in voices["voices"]
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_voice"


def test_speak_stores_phoneme_timings_and_reuses_phrases(farm: Farm, portrait_bytes: bytes) -> None:
    stats = redis.Redis.from_url(RESULTS_URL)
    counts = stats_key(NAMESPACE, farm.settings.queue_prefix)  # this farm's own counts
    hits_before = int(stats.hget(counts, "hits") or 0)

    # Not streamed: one speech artifact (and one timings artifact) for the whole text.
    first = submit(farm, portrait_bytes, mode="speak", text="Good afternoon! The phrase cache keeps this.",
                   voice="en_US-joe-medium", stream="false")
    assert first["status"] == "succeeded", first["error"]
    documents = [d for d in timings_documents(farm)
                 if d.get("kind") == "phoneme" and abs(d["seconds"] - first["speech_seconds"]) < 0.01]
    assert documents, "no timings artifact for the job's speech"
    document = documents[0]
    assert document["source"] == "model" and len(document["items"]) > 20
    assert document["items"][-1]["end"] <= first["speech_seconds"] + 0.01

    again = submit(farm, portrait_bytes, mode="speak", text="Good afternoon! This sentence is new.", stream="false")
    assert again["status"] == "succeeded", again["error"]
    assert int(stats.hget(counts, "hits") or 0) >= hits_before + 1
