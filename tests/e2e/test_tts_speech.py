"""The TTS stage's speech for real (Piper and flite): timings, level, output rate, Chinese routing."""

from __future__ import annotations

import pytest

from contracts.settings import Settings, TTSSettings
from workers.tts.base import TTSBackend, registry
from workers.tts.loudness import db_to_amplitude, loudness_dbfs

pytestmark = pytest.mark.e2e

TEXT = "Good morning, Dr. Smith. Did you pay 3.50 dollars for the tea? That is cheap!"
IPA_VOWELS = set("aeiouæɑɒɔəɛɚɝɪʊʌɨʉ")


def backend(name: str, model_settings: Settings, **tts: object) -> TTSBackend:
    settings = model_settings.model_copy(update={"tts": TTSSettings(**{"backend": name, **tts})})
    created = registry.create(name, settings)
    created.load()
    return created


@pytest.mark.parametrize("name", ["piper", "flite"])
def test_phoneme_timings_from_the_model(name: str, model_settings: Settings) -> None:
    speech = backend(name, model_settings).synthesize(TEXT)

    assert speech.timings_from_model
    assert all(t.kind == "phoneme" for t in speech.timings)
    assert len(speech.timings) > 40
    starts = [t.start for t in speech.timings]
    assert starts == sorted(starts)
    assert all(0 <= t.start < t.end <= speech.seconds + 1e-6 for t in speech.timings)
    # IPA, whatever the backend's own alphabet: many vowels, no ARPAbet names.
    assert sum(any(c in IPA_VOWELS for c in t.label) for t in speech.timings) > 15
    assert not any(t.label in ("aa", "hh", "pau") for t in speech.timings)
    # Phonemes sit where the audio is: the gaps between sentences hold none.
    last_end = speech.timings[-1].end
    assert speech.seconds - last_end < 0.3


@pytest.mark.parametrize("rate", [16000, 24000])
def test_output_rate_is_configurable(rate: int, model_settings: Settings) -> None:
    for name in ("piper", "flite"):
        speech = backend(name, model_settings, sample_rate=rate).synthesize("Hello there.")
        assert speech.sample_rate == rate
        assert 0.4 < speech.seconds < 3.0


def test_every_backend_and_voice_at_one_level(model_settings: Settings) -> None:
    target = model_settings.tts.loudness_dbfs
    levels = {}
    piper = backend("piper", model_settings)
    flite = backend("flite", model_settings)
    levels["piper"] = piper.synthesize(TEXT)
    for voice in ("slt", "kal", "rms"):
        levels[f"flite/{voice}"] = flite.synthesize(TEXT, voice=voice)
    for label, speech in levels.items():
        level = loudness_dbfs(speech.samples, speech.sample_rate)
        assert level == pytest.approx(target, abs=1.0), label
        assert float(abs(speech.samples).max()) <= db_to_amplitude(model_settings.tts.peak_dbfs) + 1e-4, label
