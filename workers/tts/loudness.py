"""Level and edges of synthesised speech: gated RMS loudness, a peak limiter, silence trimming.

Every backend and voice comes out at one level: ``normalise`` measures the
loudness of the speech frames only (a gate drops pauses and near-silence, in the
spirit of EBU R128's gating, without its K-weighting), applies one gain to reach
``target_dbfs`` and then limits peaks to ``peak_dbfs`` with a short, smooth gain
reduction instead of clipping. numpy only; float32 mono in [-1, 1].
"""

from __future__ import annotations

import numpy as np

_FRAME_SECONDS = 0.02
_ABSOLUTE_GATE_DBFS = -60.0
_RELATIVE_GATE_DB = -20.0
_LIMITER_SECONDS = 0.005
_MAX_GAIN_DB = 30.0


def db_to_amplitude(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _frame_power(samples: np.ndarray, rate: int) -> np.ndarray:
    size = max(1, int(rate * _FRAME_SECONDS))
    usable = len(samples) - len(samples) % size
    if usable == 0:
        return np.array([float(np.mean(np.square(samples, dtype=np.float64)))]) if len(samples) else np.zeros(0)
    frames = samples[:usable].astype(np.float64).reshape(-1, size)
    return np.mean(np.square(frames), axis=1)


def loudness_dbfs(samples: np.ndarray, rate: int) -> float:
    """Gated RMS level in dBFS of the speech in ``samples`` (-inf for silence)."""
    power = _frame_power(np.asarray(samples, dtype=np.float32), rate)
    power = power[power > db_to_amplitude(_ABSOLUTE_GATE_DBFS) ** 2]
    if power.size == 0:
        return float("-inf")
    relative_gate = float(np.mean(power)) * db_to_amplitude(_RELATIVE_GATE_DB) ** 2
    gated = power[power >= relative_gate]
    return float(10.0 * np.log10(np.mean(gated)))


def limit_peaks(samples: np.ndarray, rate: int, ceiling: float) -> np.ndarray:
    """Keep ``|samples| <= ceiling`` with a gain that dips smoothly (over ~5 ms) around each peak."""
    need = np.abs(samples) / ceiling
    if samples.size == 0 or float(need.max()) <= 1.0:
        return samples
    block = max(1, int(rate * _LIMITER_SECONDS))
    count = -(-len(samples) // block)
    padded = np.ones(count * block, dtype=np.float32)
    padded[: len(samples)] = np.maximum(need, 1.0)
    peaks = padded.reshape(count, block).max(axis=1)
    # Each block's envelope covers its neighbours too, so the straight line between two
    # block centres never drops below a peak in either block.
    envelope = peaks.copy()
    envelope[1:] = np.maximum(envelope[1:], peaks[:-1])
    envelope[:-1] = np.maximum(envelope[:-1], peaks[1:])
    centres = np.arange(count) * block + (block - 1) / 2.0
    gain = 1.0 / np.interp(np.arange(len(samples)), centres, envelope)
    return np.clip(samples * gain.astype(np.float32), -ceiling, ceiling).astype(np.float32)


def normalise(samples: np.ndarray, rate: int, target_dbfs: float, peak_dbfs: float) -> np.ndarray:
    """``samples`` at ``target_dbfs`` gated RMS with peaks at most ``peak_dbfs``; silence stays silence."""
    samples = np.asarray(samples, dtype=np.float32)
    level = loudness_dbfs(samples, rate)
    if not np.isfinite(level):
        return samples
    gain = db_to_amplitude(min(target_dbfs - level, _MAX_GAIN_DB))
    return limit_peaks(samples * np.float32(gain), rate, db_to_amplitude(peak_dbfs))


def speech_bounds(samples: np.ndarray, rate: int, threshold_db: float = -40.0,
                  padding_seconds: float = 0.02) -> tuple[int, int]:
    """First and end sample of the speech: frames quieter than ``threshold_db`` below the loudest are edges.

    Returns ``(0, 0)`` for silence. ``padding_seconds`` of the edge is kept on each side.
    """
    power = _frame_power(np.asarray(samples, dtype=np.float32), rate)
    if power.size == 0 or float(power.max()) <= db_to_amplitude(_ABSOLUTE_GATE_DBFS - 20.0) ** 2:
        return 0, 0
    threshold = max(float(power.max()) * db_to_amplitude(threshold_db) ** 2,
                    db_to_amplitude(_ABSOLUTE_GATE_DBFS) ** 2)
    loud = np.flatnonzero(power >= threshold)
    size = max(1, int(rate * _FRAME_SECONDS))
    pad = int(rate * padding_seconds)
    start = max(0, int(loud[0]) * size - pad)
    end = min(len(samples), (int(loud[-1]) + 1) * size + pad)
    return start, end
