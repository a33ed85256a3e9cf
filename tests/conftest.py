"""Shared fixtures: the repo portrait, speech made by the TTS stage, and one real farm per session."""

from __future__ import annotations

import io
import json
import random
import wave
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from tests.farm import Farm, farm_fixture

DATA = Path(__file__).parent / "data"
# Small limits so that the limit tests need only small uploads.
FARM_LIMITS = {
    "TALKFARM_LIMITS__MAX_UPLOAD_BYTES": str(3 * 1024 * 1024),
    "TALKFARM_LIMITS__MAX_TEXT_CHARS": "400",
    "TALKFARM_LIMITS__MAX_AUDIO_SECONDS": "30",
    # Room for a reply of several sentences (the streaming tests need at least four).
    "TALKFARM_LLM__MAX_NEW_TOKENS": "160",
    # Structured logs: tests/e2e/test_observability.py reads the farm's lines as JSON.
    "TALKFARM_LOG__FORMAT": "json",
    # The tests' keys: vip (generous), standard (another owner), a tiny tier whose every quota a test can
    # reach with a few requests, and a slow one for the request rate (tests/e2e/test_access.py). A revoked key
    # stops within half a second.
    "TALKFARM_AUTH__TIERS": json.dumps({
        "vip": {"requests_per_minute": 6000, "burst": 1000, "max_jobs_in_flight": 64, "priority": 8,
                "max_event_streams": 64},
        "standard": {},
        "tiny": {"requests_per_minute": 6000, "burst": 1000, "max_jobs_in_flight": 1,
                 "upload_bytes_per_day": 1_200_000, "max_event_streams": 1, "priority": 1},
        "slow": {"requests_per_minute": 6, "burst": 4},
    }),
    "TALKFARM_AUTH__KEY_CACHE_SECONDS": "0.5",
}


@pytest.fixture(scope="session")
def portrait_bytes() -> bytes:
    return (DATA / "portrait.png").read_bytes()


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    """The repo portrait as OpenCV reads it: BGR uint8, 512 x 512."""
    import cv2

    image = cv2.imread(str(DATA / "portrait.png"), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="session")
def model_settings():
    """Settings whose model folder holds the prepared embedded models."""
    from contracts.settings import Settings
    from pipeline.stages import prepare_models

    settings = Settings()
    prepare_models(settings)
    return settings


@pytest.fixture(scope="session")
def speak(model_settings) -> Callable[[str], bytes]:
    """Text → WAV bytes with the farm's own TTS backend (Piper, joe voice)."""
    from contracts.audio import wav_bytes
    from workers.tts.base import registry

    tts = registry.create("piper", model_settings)

    def make(text: str) -> bytes:
        speech = tts.synthesize(text)
        return wav_bytes(speech.samples, speech.sample_rate)

    return make


@pytest.fixture(scope="session")
def sqlite_farm(tmp_path_factory: pytest.TempPathFactory, model_settings) -> Iterator[Farm]:
    """The session's farm, its job store in SQLite."""
    yield from farm_fixture(tmp_path_factory.mktemp("farm"), FARM_LIMITS)


@pytest.fixture(scope="session")
def postgresql_farm(tmp_path_factory: pytest.TempPathFactory, model_settings) -> Iterator[Farm]:
    """The same farm with its job store in PostgreSQL: a new database on the machine's server
    (``TALKFARM_TEST_POSTGRES_URL`` names another), dropped afterwards. Started only for the modules
    that run on both stores (``tests.e2e.stores``)."""
    from tests.faults.postgres import scratch_database

    with scratch_database() as url:
        yield from farm_fixture(tmp_path_factory.mktemp("pg-farm"), {**FARM_LIMITS, "TALKFARM_DATABASE_URL": url})


@pytest.fixture(scope="session")
def farm(sqlite_farm: Farm) -> Farm:
    """The farm most end-to-end tests use (SQLite)."""
    return sqlite_farm


def fresh_portrait(portrait: bytes) -> bytes:
    """The same face with one pixel changed at random: a portrait no store or cache has seen yet."""
    from PIL import Image

    image = Image.open(io.BytesIO(portrait)).convert("RGB")
    image.putpixel((0, 0), tuple(random.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def wav_of(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
