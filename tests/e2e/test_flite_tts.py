"""The flite fallback voice for real: flite speaks, Whisper (base) understands it; bad input gets clear codes."""

from __future__ import annotations

import re
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from contracts.audio import decode_audio, wav_bytes
from contracts.errors import ModelMissingError, PermanentError, StageTimeout
from contracts.settings import Settings
from pipeline.stages import prepare_models
from workers.asr.base import SAMPLE_RATE, ASRBackend
from workers.asr.base import registry as asr_registry
from workers.tts.backends.flite import FliteTTS
from workers.tts.base import TTSBackend
from workers.tts.base import registry as tts_registry

pytestmark = pytest.mark.e2e

TEXT = (
    "The weather is lovely today, so we are going for a walk in the park. "
    "Please tell me how many planets there are in the solar system."
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    settings = Settings()
    prepare_models(settings, ["asr"])
    return settings


@pytest.fixture(scope="module")
def flite(settings: Settings) -> TTSBackend:
    backend = tts_registry.create("flite", settings)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def asr(settings: Settings) -> ASRBackend:
    backend = asr_registry.create("faster-whisper", settings)
    backend.load()
    return backend


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"[a-z0-9']+", text.lower()))


def overlap(expected: str, heard: str) -> float:
    """Share of the expected words that were heard (with multiplicity)."""
    want = words(expected)
    return sum((want & words(heard)).values()) / sum(want.values())


def test_registered_by_name(flite: TTSBackend) -> None:
    assert isinstance(flite, FliteTTS)
    assert flite.capabilities.languages == ("en",)
    assert "slt" in flite.available_voices()


def test_whisper_understands_flite(flite: TTSBackend, asr: ASRBackend, settings: Settings) -> None:
    speech = flite.synthesize(TEXT)

    assert speech.sample_rate == settings.tts.sample_rate
    assert 4.0 < speech.seconds < 15.0
    assert float(abs(speech.samples).max()) <= 1.0
    # Through a WAV file and decoded to 16 kHz, as the farm passes speech between stages.
    heard = asr.transcribe(decode_audio(wav_bytes(speech.samples, speech.sample_rate), SAMPLE_RATE), "en")
    assert overlap(TEXT, heard.text) >= 0.8, heard.text


def test_another_builtin_voice(flite: TTSBackend) -> None:
    default = flite.synthesize("Good morning to you.")
    other = flite.synthesize("Good morning to you.", voice="kal")

    assert other.sample_rate == default.sample_rate
    assert other.seconds > 0.3
    # Speech is trimmed to 20 ms frames, so two voices may give the same length: compare the audio.
    assert len(other.samples) != len(default.samples) or not np.allclose(other.samples, default.samples)


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text(flite: TTSBackend, text: str) -> None:
    with pytest.raises(PermanentError) as caught:
        flite.synthesize(text)
    assert caught.value.code == "empty_text"


@pytest.mark.parametrize("voice", ["nobody", "en_US-joe-medium", "/usr/share/flite/slt.flitevox", "http://x/v"])
def test_unknown_voice(flite: TTSBackend, voice: str) -> None:
    with pytest.raises(PermanentError) as caught:
        flite.synthesize("Hello there.", voice=voice)
    assert caught.value.code == "unknown_voice"
    assert "slt" in caught.value.message


def test_missing_binary_names_the_install_command(settings: Settings) -> None:
    backend = FliteTTS(settings, binary="talkfarm-no-such-flite")
    with pytest.raises(ModelMissingError) as caught:
        backend.check()
    assert "apt-get install flite" in caught.value.message


def test_hung_flite_is_a_stage_timeout(settings: Settings, tmp_path: Path) -> None:
    # Lists a voice, then hangs on synthesis; exec so that the killed process is the sleeper.
    script = tmp_path / "slow-flite"
    script.write_text('#!/bin/sh\nif [ "$1" = "-lv" ]; then echo "Voices available: slt"; exit 0; fi\nexec sleep 30\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    backend = FliteTTS(settings, binary=str(script))
    backend.timeout_seconds = 0.5

    with pytest.raises(StageTimeout):
        backend.synthesize("Hello there.")
