"""Per-frame animation controls: mouth openness and spread from speech, blinks, head drift.

Everything here is plain numpy and deterministic for a given random generator, so
the same portrait and speech always render the same video (the video cache and
idempotent stage outputs rely on that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Loudness is measured where open vowels carry their energy (first and second formants):
# rumble, nasal murmur (m, n) and hiss (s, f) move the jaw little. Brightness spans wider.
LEVEL_BAND_HZ = (250.0, 2500.0)
BRIGHT_BAND_HZ = (250.0, 5000.0)


@dataclass(frozen=True)
class MouthOptions:
    """How loudness becomes mouth openness.

    ``gate_db`` below the speech reference level (and never below ``floor_dbfs``)
    counts as silence and closes the mouth; the reference level maps to openness 1,
    through a power ``curve`` (>1 keeps quieter sounds less open). A frame quieter than
    the loudest within ``syllable_frames`` on either side closes by ``1/syllable_db``
    per dB, so syllables stand out in connected speech. ``attack_s``/``release_s`` are
    the time constants of the opening and closing smoothing; values under
    ``rest_below`` snap to 0 so silence is perfectly still.
    """

    gate_db: float = 30.0
    floor_dbfs: float = -60.0
    reference_percentile: float = 90.0
    curve: float = 1.6
    syllable_frames: int = 3
    syllable_db: float = 12.0
    attack_s: float = 0.025
    release_s: float = 0.05
    rest_below: float = 0.03


@dataclass(frozen=True)
class RigOptions:
    """Motion ranges, relative to the face so they suit any image size."""

    jaw_drop: float = 0.12  # chin travel at openness 1, as a fraction of nose-bridge-to-chin
    lip_spread: float = 0.06  # relative change of mouth width at spread ±1
    lip_round: float = 0.05  # relative narrowing of the mouth at openness 1
    lower_lid_share: float = 0.2  # share of the eye's opening the lower lid rises in a blink


@dataclass(frozen=True)
class SpeechFeatures:
    """Per-frame speech level (dBFS in the speech band) and spectral centroid (Hz)."""

    level_db: np.ndarray
    centroid_hz: np.ndarray


def speech_features(audio: np.ndarray, sample_rate: int, fps: int, frames: int) -> SpeechFeatures:
    """Band-limited level and centroid of a Hann window (two frames long) centred on each frame."""
    hop = sample_rate / fps
    size = max(int(round(2.0 * hop)), 64)
    window = np.hanning(size).astype(np.float32)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    band = (freqs >= LEVEL_BAND_HZ[0]) & (freqs <= LEVEL_BAND_HZ[1])
    bright = (freqs >= BRIGHT_BAND_HZ[0]) & (freqs <= BRIGHT_BAND_HZ[1])
    silence = np.zeros(size, np.float32)
    padded = np.concatenate([silence, audio.astype(np.float32), silence])
    # Start of each window in the padded signal: centred on the middle of frame i.
    starts = (size + (np.arange(frames) + 0.5) * hop - size / 2).astype(np.int64)
    level = np.empty(frames, np.float32)
    centroid = np.empty(frames, np.float32)
    offsets = np.arange(size)
    for begin in range(0, frames, 256):  # bounded memory for long speech
        chunk = padded[starts[begin:begin + 256, None] + offsets] * window
        power = np.abs(np.fft.rfft(chunk, axis=1)) ** 2
        # Parseval: mean square of the band-limited windowed signal, window gain removed.
        mean_square = 2.0 * power[:, band].sum(axis=1) / (size * float(np.sum(window**2)))
        level[begin:begin + 256] = 10.0 * np.log10(mean_square + 1e-12)
        weights = power[:, bright]
        centroid[begin:begin + 256] = (weights @ freqs[bright]) / np.maximum(weights.sum(axis=1), 1e-20)
    return SpeechFeatures(level, centroid)


def smooth(values: np.ndarray, fps: int, attack_s: float, release_s: float) -> np.ndarray:
    """One-pole smoothing that follows rises with ``attack_s`` and falls with ``release_s``."""
    up = 1.0 - np.exp(-1.0 / (fps * max(attack_s, 1e-6)))
    down = 1.0 - np.exp(-1.0 / (fps * max(release_s, 1e-6)))
    out = np.empty_like(values, dtype=np.float32)
    state = 0.0
    for i, target in enumerate(values):
        state += (target - state) * (up if target > state else down)
        out[i] = state
    return out


def mouth_openness(features: SpeechFeatures, fps: int, options: MouthOptions = MouthOptions()) -> np.ndarray:
    """Openness per frame in [0, 1]: 0 in silence, about 1 on the loud syllables."""
    level = features.level_db
    voiced = level[level > options.floor_dbfs]
    if voiced.size == 0:
        return np.zeros_like(level)
    reference = float(np.percentile(voiced, options.reference_percentile))
    gate = max(reference - options.gate_db, options.floor_dbfs)
    raw = np.clip((level - gate) / max(reference - gate, 1e-3), 0.0, 1.0) ** options.curve
    if options.syllable_frames > 0:
        reach = options.syllable_frames
        windows = sliding_window_view(np.pad(level, reach, mode="edge"), 2 * reach + 1)
        dip = level - windows.max(axis=1)  # <= 0: how far below the nearby syllable peak
        raw = raw * np.clip(1.0 + dip / options.syllable_db, 0.25, 1.0)
    opened = np.clip(smooth(raw, fps, options.attack_s, options.release_s), 0.0, 1.0)
    opened[opened < options.rest_below] = 0.0
    return opened.astype(np.float32)


def mouth_spread(features: SpeechFeatures, openness: np.ndarray, fps: int) -> np.ndarray:
    """Spread per frame in [-1, 1]: bright sounds (ee, s) widen the lips, dark ones (oo) round them.

    Measured as the spectral centroid in octaves around its median over the voiced frames;
    0 wherever the mouth is closed.
    """
    voiced = openness > 0
    if not voiced.any():
        return np.zeros_like(openness)
    octaves = np.log2(np.maximum(features.centroid_hz, 1.0))
    centre = float(np.median(octaves[voiced]))
    raw = np.where(voiced, np.clip(octaves - centre, -1.0, 1.0), 0.0).astype(np.float32)
    spread = smooth(raw, fps, 0.06, 0.06)
    spread[~voiced] = 0.0
    return spread


def blink_curve(
    frames: int,
    fps: int,
    rng: np.random.Generator,
    interval_s: tuple[float, float] = (2.0, 6.0),
    duration_s: float = 0.15,
) -> np.ndarray:
    """Eyelid closure per frame in [0, 1]: blinks of ``duration_s`` at random intervals.

    The lid closes in 40 % of the blink and opens in the rest; each blink's peak is put
    on a frame so that every blink closes the eye fully at least once.
    """
    closure = np.zeros(frames, np.float32)
    times = np.arange(frames) / fps
    closing = 0.4 * duration_s
    peak = rng.uniform(0.5 * interval_s[0], interval_s[1] * 0.75)
    while peak < frames / fps:
        peak = round(peak * fps) / fps
        before = (times - (peak - closing)) / closing
        after = (times - peak) / (duration_s - closing)
        shape = np.where(times <= peak, np.clip(before, 0.0, 1.0), np.clip(1.0 - after, 0.0, 1.0))
        closure = np.maximum(closure, np.sin(0.5 * np.pi * shape) ** 2)
        peak += rng.uniform(*interval_s)
    closure[closure < 1e-3] = 0.0
    return closure


def edge_envelope(frames: int, fps: int, ramp_s: float = 0.3) -> np.ndarray:
    """1 in the middle, easing (raised cosine) to 0 on the first and last frame: motion that starts and
    ends at rest, for segments that are joined end to end."""
    ramp = max(1, min(int(round(ramp_s * fps)), frames // 2))
    envelope = np.ones(frames, np.float32)
    if frames < 2:
        return np.zeros(frames, np.float32)
    rise = (0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)).astype(np.float32)
    envelope[:ramp] = np.minimum(envelope[:ramp], rise)
    envelope[frames - ramp:] = np.minimum(envelope[frames - ramp:], rise[::-1])
    return envelope


def head_drift(frames: int, fps: int, rng: np.random.Generator, amplitude_px: float) -> np.ndarray:
    """A slow, smooth offset per frame, shape ``(frames, 2)``, within ``amplitude_px`` pixels.

    Two incommensurate sines per axis (periods of seconds); vertical motion is smaller.
    """
    drift = np.zeros((frames, 2), np.float32)
    if amplitude_px <= 0:
        return drift
    times = np.arange(frames) / fps
    for axis, scale in ((0, 1.0), (1, 0.6)):
        slow, fast = rng.uniform(5.0, 9.0), rng.uniform(2.5, 4.5)
        phases = rng.uniform(0.0, 2.0 * np.pi, size=2)
        wave = 0.65 * np.sin(2 * np.pi * times / slow + phases[0]) + 0.35 * np.sin(
            2 * np.pi * times / fast + phases[1]
        )
        drift[:, axis] = amplitude_px * scale * wave
    return drift
