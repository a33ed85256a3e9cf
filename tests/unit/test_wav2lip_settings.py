"""The wav2lip settings reach the pooled pipeline's options (environment → ``EngineOptions``)."""

from __future__ import annotations

import pytest

from contracts.settings import Settings
from workers.animation.backends.wav2lip import engine_options
from workers.animation.encoder import EncoderOptions

pytestmark = pytest.mark.unit


def test_environment_settings_shape_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"BATCH_SIZE": "128", "WAV2LIP__FIRST_BATCH": "4", "WAV2LIP__FRAMES_AHEAD": "64",
                        "WAV2LIP__MAX_WAIT_MS": "7", "WAV2LIP__MEL_FIRST_PROCESSES": "3",
                        "WAV2LIP__MEL_PROCESSES": "0", "WAV2LIP__SETUP_SLOTS": "5"}.items():
        monkeypatch.setenv(f"TALKFARM_ANIMATION__{name}", value)
    options = engine_options(Settings().animation, EncoderOptions(crf=23, preset="superfast", tune="zerolatency"))
    assert (options.batch_size, options.first_batch, options.frames_ahead) == (128, 4, 64)
    assert options.max_wait == pytest.approx(0.007)
    assert (options.mel_first_processes, options.mel_processes, options.setup_slots) == (3, 0, 5)
    assert (options.crf, options.preset, options.tune) == (23, "superfast", "zerolatency")


def test_defaults_are_the_measured_configuration() -> None:
    options = engine_options(Settings().animation, EncoderOptions())
    assert (options.first_batch, options.mel_first_processes) == (8, 4)
    assert (options.mel_processes, options.setup_slots) == (2, 2)
