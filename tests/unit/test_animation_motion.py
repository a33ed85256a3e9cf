"""Per-frame animation controls from speech: openness, spread, blinks, head drift."""

from __future__ import annotations

import numpy as np
import pytest

from workers.animation.landmark.motion import blink_curve, head_drift, mouth_openness, mouth_spread, speech_features

pytestmark = pytest.mark.unit

RATE = 16000
FPS = 25


def _signal(parts: list[tuple[float, float]]) -> np.ndarray:
    """Concatenated (seconds, amplitude) pieces of a 500 Hz tone with a little noise."""
    rng = np.random.default_rng(0)
    chunks = []
    for seconds, amplitude in parts:
        t = np.arange(int(seconds * RATE)) / RATE
        chunks.append(amplitude * (np.sin(2 * np.pi * 500 * t) + 0.1 * rng.standard_normal(len(t))))
    return np.concatenate(chunks).astype(np.float32)


def _openness(audio: np.ndarray) -> np.ndarray:
    frames = round(len(audio) / RATE * FPS)
    return mouth_openness(speech_features(audio, RATE, FPS, frames), FPS)


def test_silence_keeps_the_mouth_closed() -> None:
    assert not _openness(np.zeros(RATE * 2, np.float32)).any()
    assert not _openness(_signal([(2.0, 1e-5)])).any()  # below the absolute floor


def test_loud_parts_open_and_silence_closes_exactly() -> None:
    openness = _openness(_signal([(1.0, 0.5), (1.0, 0.0), (1.0, 0.5)]))
    assert openness.shape == (75,)
    assert openness.dtype == np.float32
    assert 0.0 <= openness.min() and openness.max() <= 1.0
    assert openness[5:23].min() > 0.8
    assert openness[55:73].min() > 0.8
    assert not openness[31:48].any()  # released within a few frames, then exactly 0


def test_quiet_background_under_speech_is_gated() -> None:
    openness = _openness(_signal([(1.0, 0.5), (1.0, 0.005)]))  # 40 dB below the speech
    assert not openness[32:].any()


def test_attack_is_fast_and_release_is_smooth() -> None:
    openness = _openness(_signal([(0.5, 0.0), (1.0, 0.5), (0.5, 0.0)]))
    onset = 13  # 0.52 s
    assert openness[onset] > 0.5
    closing = openness[38:44]
    assert np.all(np.diff(closing) <= 0)


def test_spread_is_bounded_and_zero_when_closed() -> None:
    audio = _signal([(1.0, 0.5), (0.5, 0.0)])
    features = speech_features(audio, RATE, FPS, 38)
    openness = mouth_openness(features, FPS)
    spread = mouth_spread(features, openness, FPS)
    assert np.all(np.abs(spread) <= 1.0)
    assert not spread[openness == 0].any()


def test_blinks_are_short_and_two_to_six_seconds_apart() -> None:
    closure = blink_curve(30 * FPS, FPS, np.random.default_rng(1))
    assert 0.0 <= closure.min() and closure.max() <= 1.0
    peaks = np.flatnonzero(closure >= 0.999)
    assert len(peaks) >= 4
    gaps = np.diff(peaks) / FPS
    assert np.all(gaps >= 2.0) and np.all(gaps <= 6.0 + 1.0 / FPS)
    for peak in peaks:
        closed = np.flatnonzero(closure[max(0, peak - 5):peak + 6] > 0)
        assert len(closed) * 1000 / FPS <= 200  # about 150 ms on a 40 ms frame grid


def test_head_drift_is_small_smooth_and_optional() -> None:
    drift = head_drift(20 * FPS, FPS, np.random.default_rng(2), 0.5)
    assert drift.shape == (500, 2)
    assert np.abs(drift).max() <= 0.5
    assert np.abs(np.diff(drift, axis=0)).max() < 0.05
    assert not head_drift(100, FPS, np.random.default_rng(2), 0.0).any()


def test_same_seed_same_motion() -> None:
    first = blink_curve(500, FPS, np.random.default_rng(9))
    again = blink_curve(500, FPS, np.random.default_rng(9))
    assert np.array_equal(first, again)


def test_edge_envelope_rests_at_both_ends() -> None:
    from workers.animation.landmark.motion import edge_envelope

    env = edge_envelope(50, 25)
    assert env[0] == 0.0 and env[-1] == pytest.approx(0.0, abs=0.03)
    assert env[25] == 1.0 and (env >= 0).all() and (env <= 1).all()
    assert np.all(np.diff(env[:7]) > 0) and np.all(np.diff(env[-7:]) < 0)
    assert len(edge_envelope(3, 25)) == 3 and edge_envelope(1, 25).tolist() == [0.0]
