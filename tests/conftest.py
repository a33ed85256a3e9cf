"""Shared fixtures: the repo portrait, speech made by the TTS stage, and one real farm per session."""

from __future__ import annotations

import io
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
def farm(tmp_path_factory: pytest.TempPathFactory, model_settings) -> Iterator[Farm]:
    yield from farm_fixture(tmp_path_factory.mktemp("farm"), FARM_LIMITS)


def wav_of(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
