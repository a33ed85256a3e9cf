"""Mouth shapes from speech: phonemes from timings or text, viseme blending, bilabial and silent closure."""

from __future__ import annotations

import numpy as np
import pytest

from contracts.timings import Timing
from workers.animation.landmark.motion import SpeechFeatures
from workers.animation.landmark.phonemes import _voiced_runs, from_text, from_timings
from workers.animation.landmark.visemes import _G2P, VISEME_SHAPES, loudness, mouth_track, viseme_weights

pytestmark = pytest.mark.unit

FPS = 25


def _features(level_db: list[float] | np.ndarray, centroid: float = 1500.0) -> SpeechFeatures:
    level = np.asarray(level_db, np.float32)
    return SpeechFeatures(level, np.full(len(level), centroid, np.float32))


def _speech(pattern: list[tuple[float, float]]) -> SpeechFeatures:
    """(seconds, dBFS) pieces, with a 5 Hz syllable ripple on the loud ones."""
    levels: list[float] = []
    for seconds, db in pattern:
        n = int(round(seconds * FPS))
        ripple = 6.0 * np.sin(2 * np.pi * 5 * np.arange(n) / FPS) if db > -60 else np.zeros(n)
        levels += list(db + ripple)
    return _features(levels)


def _ipa(*spans: tuple[float, float, str]) -> tuple[Timing, ...]:
    return tuple(Timing(a, b, label, "phoneme") for a, b, label in spans)


def test_every_viseme_has_a_shape_and_closed_ones_are_shut() -> None:
    from openfacefx.visemes import VISEMES

    assert set(VISEME_SHAPES) == set(VISEMES)
    assert VISEME_SHAPES["sil"][0] == VISEME_SHAPES["PP"][0] == 0.0
    assert VISEME_SHAPES["aa"][0] == max(shape[0] for shape in VISEME_SHAPES.values())
    assert VISEME_SHAPES["I"][1] > 0.5 > -0.5 > VISEME_SHAPES["U"][1]  # ee spreads, oo rounds


def test_ipa_timings_become_segments_with_silence_in_the_gaps() -> None:
    timings = _ipa((0.1, 0.2, "h"), (0.2, 0.4, "ɑː"), (0.6, 0.7, "m"), (0.7, 0.9, "iː"))
    phonemes = from_timings(timings, 1.2, _G2P)
    assert phonemes is not None and phonemes.alphabet == "ipa"
    labels = [(s.phoneme, round(s.start, 2), round(s.end, 2)) for s in phonemes.segments]
    assert labels == [("sil", 0.0, 0.1), ("h", 0.1, 0.2), ("ɑː", 0.2, 0.4), ("sil", 0.4, 0.6),
                      ("m", 0.6, 0.7), ("iː", 0.7, 0.9), ("sil", 0.9, 1.2)]


def test_arpabet_and_word_timings_are_understood() -> None:
    arpabet = from_timings(_ipa((0.0, 0.2, "B"), (0.2, 0.5, "AA1")), 0.5, _G2P)
    assert arpabet is not None and arpabet.alphabet == "arpabet"
    words = (Timing(0.1, 0.5, "Bob", "word"), Timing(0.7, 1.1, "went", "word"))
    phonemes = from_timings(words, 1.2, _G2P)
    assert phonemes is not None and phonemes.alphabet == "arpabet"
    spoken = [s for s in phonemes.segments if s.phoneme != "sil"]
    assert spoken[0].phoneme == "B" and spoken[0].start == pytest.approx(0.1)
    assert max(s.end for s in spoken if s.start < 0.6) == pytest.approx(0.5)
    assert min(s.start for s in spoken if s.start > 0.5) == pytest.approx(0.7)
    assert from_timings((), 1.0, _G2P) is None
    assert from_timings(_ipa((2.0, 2.5, "a")), 1.0, _G2P) is None  # all past the audio


def test_text_is_aligned_to_the_voiced_runs_and_pauses_fall_on_punctuation() -> None:
    voiced = np.zeros(4 * FPS, bool)
    voiced[5:40] = True  # "Hello there." 0.2 - 1.6 s
    voiced[42:44] = False  # a stop closure: too short to be a pause
    voiced[60:95] = True  # "How are you?" 2.4 - 3.8 s
    assert _voiced_runs(voiced, FPS) == [(0.2, 1.6), (2.4, 3.8)]
    phonemes = from_text("Hello there. How are you?", voiced, FPS, 4.0, _G2P)
    assert phonemes is not None and phonemes.alphabet == "arpabet"
    segments = phonemes.segments
    assert segments[0].phoneme == "sil" and segments[0].end == pytest.approx(0.2)
    assert segments[-1].phoneme == "sil" and segments[-1].start == pytest.approx(3.8)
    pause = [s for s in segments if s.phoneme == "sil" and s.start > 1.0 and s.end < 3.0]
    assert len(pause) == 1 and pause[0].start == pytest.approx(1.6) and pause[0].end == pytest.approx(2.4)
    # "How" starts the second run: the first phoneme after the pause is its HH.
    after = [s for s in segments if s.start >= 2.4 and s.phoneme != "sil"]
    assert after[0].phoneme == "HH" and after[0].start == pytest.approx(2.4)
    # Time is contiguous and covers the audio.
    assert all(a.end == pytest.approx(b.start) for a, b in zip(segments, segments[1:]))


def test_text_with_more_phrases_than_pauses_matches_pauses_to_the_closest_boundaries() -> None:
    voiced = np.zeros(5 * FPS, bool)
    voiced[0:50] = True  # one long run (2 s) holding "One, two, three."
    voiced[60:110] = True  # then "Four five six seven."
    text = "One, two, three. Four five six seven."
    phonemes = from_text(text, voiced, FPS, 5.0, _G2P)
    assert phonemes is not None
    # The single pause (2.0 - 2.4 s) falls between "three" and "Four"; F is Four's first phoneme.
    after = [s for s in phonemes.segments if s.start >= 2.4 and s.phoneme != "sil"]
    assert after[0].phoneme == "F" and after[0].start == pytest.approx(2.4)


def test_text_without_words_or_voice_gives_nothing() -> None:
    voiced = np.ones(FPS, bool)
    assert from_text("...", voiced, FPS, 1.0, _G2P) is None
    assert from_text("Hello", np.zeros(FPS, bool), FPS, 1.0, _G2P) is None


def test_viseme_weights_sum_to_one_and_follow_the_phonemes() -> None:
    phonemes = from_timings(_ipa((0.2, 0.6, "ɑː"), (0.6, 0.8, "m"), (0.8, 1.2, "uː")), 1.6, _G2P)
    assert phonemes is not None
    weights = viseme_weights(phonemes, 40, FPS)
    assert weights.shape == (40, 15)
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    from openfacefx.visemes import VISEMES

    column = {name: i for i, name in enumerate(VISEMES)}
    assert weights[10, column["aa"]] > 0.5  # 0.42 s: inside the vowel
    assert weights[17, column["PP"]] > 0.8  # 0.70 s: the m
    assert weights[25, column["U"]] > 0.5  # 1.02 s: oo
    assert weights[39, column["sil"]] > 0.5  # the vowel's influence fades over a few tenths of a second


def test_mouth_closes_for_bilabials_even_while_loud() -> None:
    features = _features([-60.0] * 5 + [-12.0] * 30 + [-60.0] * 5)  # steady, loud voice 0.2 - 1.4 s
    timings = _ipa((0.2, 0.6, "ɑː"), (0.6, 0.72, "b"), (0.72, 1.4, "ɑː"))
    track = mouth_track(features, FPS, timings=timings)
    assert track.source == "timings"
    assert track.openness[10] > 0.5  # 0.42 s, the first vowel
    assert track.openness[16] < 0.05  # 0.66 s, the middle of the b
    assert track.openness[25] > 0.5
    assert not track.openness[:4].any() and not track.openness[-2:].any()  # silence: shut (after the release)
    # Blended: the lips close over a few frames, not from wide open to shut in one.
    assert np.all(np.abs(np.diff(track.openness[8:24])) < 0.45)


def test_mouth_closes_in_silence_whatever_the_timings_say() -> None:
    features = _speech([(0.5, -15.0), (0.6, -90.0), (0.5, -15.0)])
    timings = _ipa((0.0, 1.6, "ɑː"))  # a vowel claimed across the whole pause
    track = mouth_track(features, FPS, timings=timings)
    assert not track.openness[16:27].any()  # from 0.64 s (release) to the end of the pause
    assert track.openness[5:10].min() > 0.1


def test_sources_fall_back_from_timings_to_text_to_audio() -> None:
    features = _speech([(0.3, -90.0), (1.0, -15.0), (0.3, -90.0)])
    assert mouth_track(features, FPS, timings=_ipa((0.3, 1.3, "a")), text="ha").source == "timings"
    assert mouth_track(features, FPS, text="Hello").source == "text"
    assert mouth_track(features, FPS, text="   ").source == "audio"
    audio_only = mouth_track(features, FPS)
    assert audio_only.source == "audio"
    assert audio_only.openness[12:30].max() > 0.5 and not audio_only.openness[:7].any()
    for track in (audio_only, mouth_track(features, FPS, text="Hello")):
        assert track.openness.dtype == np.float32 and track.spread.dtype == np.float32
        assert np.all((0 <= track.openness) & (track.openness <= 1)) and np.all(np.abs(track.spread) <= 1)


def test_spread_follows_the_viseme_shape() -> None:
    features = _features([-12.0] * 40)
    wide = mouth_track(features, FPS, timings=_ipa((0.0, 1.6, "iː")))
    round_ = mouth_track(features, FPS, timings=_ipa((0.0, 1.6, "uː")))
    assert wide.spread[10:30].min() > 0.5 and round_.spread[10:30].max() < -0.5


def test_loudness_is_zero_below_the_gate_and_one_at_the_reference() -> None:
    loud = loudness(_features([-90.0, -70.0, -35.0, -20.0, -10.0, -10.0, -10.0]))  # gate: 30 dB under -10
    assert loud[0] == loud[1] == 0.0 and loud[-1] == pytest.approx(1.0)
    assert 0.0 < loud[2] < loud[3] < 1.0
