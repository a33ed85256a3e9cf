"""The ASR interface's own logic: limits, device and compute type choice, cache entries and keys."""

from __future__ import annotations

import numpy as np
import pytest

from contracts.errors import PermanentError
from contracts.settings import Settings
from tests.fakes.backends import FakeASR
from workers.asr.backends.faster_whisper import resolve_compute_type, resolve_device
from workers.asr.base import SAMPLE_RATE, Transcription

pytestmark = pytest.mark.unit


def test_audio_over_the_limit_is_refused_without_calling_the_backend() -> None:
    settings = Settings()
    settings = settings.model_copy(update={"limits": settings.limits.model_copy(update={"max_audio_seconds": 2.0})})
    asr = FakeASR(settings)

    with pytest.raises(PermanentError) as caught:
        asr.transcribe(np.zeros(2 * SAMPLE_RATE + 1, dtype=np.float32))
    assert caught.value.code == "audio_too_long"
    assert asr.knobs.calls == 0

    assert asr.transcribe(np.zeros(2 * SAMPLE_RATE, dtype=np.float32)).text == "hello there"


def test_auto_device_and_compute_type() -> None:
    import ctranslate2

    expected = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda") == "cuda"
    assert resolve_compute_type("auto", "cpu") == "int8"
    assert resolve_compute_type("auto", "cuda") == "float16"
    assert resolve_compute_type("int8_float16", "cuda") == "int8_float16"


def test_settings_default_to_auto_and_read_batching_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKFARM_ASR__BATCHED", "true")
    monkeypatch.setenv("TALKFARM_ASR__BATCH_SIZE", "16")
    settings = Settings()

    assert (settings.asr.device, settings.asr.compute_type) == ("auto", "auto")
    assert settings.asr.batched is True and settings.asr.batch_size == 16


def test_transcription_round_trips_through_a_cache_entry() -> None:
    result = Transcription("Hello there.", "en", 0.97, 1.5)

    assert Transcription.from_dict(result.to_dict()) == result
    assert Transcription.from_dict({"text": "Hello"}) is None  # an entry of another shape is a miss
    assert Transcription.from_dict({**result.to_dict(), "language_probability": "high"}) is None


def test_result_key_depends_on_audio_backend_and_language() -> None:
    asr = FakeASR(Settings())
    audio = "a" * 64 + ".wav"

    key = asr.result_key(audio, None)

    assert asr.result_key(audio, None) == key
    assert len({key, asr.result_key("b" * 64 + ".wav", None), asr.result_key(audio, "en")}) == 3
