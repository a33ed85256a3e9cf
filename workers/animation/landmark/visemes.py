"""Mouth controls per frame from speech: visemes where the words are known, the audio alone otherwise.

``mouth_track`` picks the richest source it is given:

1. ``timings``: the TTS stage's phoneme (or word) timings;
2. ``text``: the words, aligned to the audio (``workers.animation.landmark.phonemes``);
3. neither (lipsync mode): the audio's loudness and brightness (``workers.animation.landmark.motion``).

With phonemes, openfacefx's coarticulation model blends the 15 Oculus visemes
smoothly (each phoneme's influence rises before and decays after it, and lip
closures are enforced at bilabials); every viseme is a mouth shape, an
(openness, spread) pair in ``VISEME_SHAPES``, and the blend of shapes is the
frame's shape. How far the jaw drops still comes from the audio, as in lipsync
mode (louder syllables open wider, and the mouth shuts when the audio is
silent, whatever the timings say); the shape scales that between
``1 - shape_weight`` (closed shapes) and 1 (``aa``) and gives the spread; the
bilabial weight closes the lips outright: ``(1 - w_PP)^2`` of the openness
remains, so a p, b or m between two open vowels seals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from openfacefx.coarticulation import build_viseme_curves
from openfacefx.g2p import G2P
from openfacefx.ipa import IPA_MAPPING
from openfacefx.visemes import VISEMES

from contracts.timings import Timing
from workers.animation.landmark.motion import MouthOptions, SpeechFeatures, mouth_openness, mouth_spread
from workers.animation.landmark.phonemes import Phonemes, from_text, from_timings

# Viseme → (openness 0..1, spread -1 round .. +1 wide).
VISEME_SHAPES: dict[str, tuple[float, float]] = {
    "sil": (0.0, 0.0),
    "PP": (0.0, 0.0),  # p b m: lips pressed
    "FF": (0.12, 0.25),  # f v: lower lip to the upper teeth
    "TH": (0.3, 0.2),
    "DD": (0.35, 0.2),  # t d l
    "kk": (0.45, 0.1),  # k g h
    "CH": (0.3, -0.6),  # ch j sh: protruded
    "SS": (0.2, 0.5),  # s z: teeth close, lips wide
    "nn": (0.3, 0.1),
    "RR": (0.35, -0.5),
    "aa": (1.0, 0.1),  # a: open jaw
    "E": (0.7, 0.5),
    "I": (0.45, 0.85),  # ee: wide
    "O": (0.8, -0.6),  # o: round and open
    "U": (0.4, -1.0),  # oo w: tight rounding
}
_OPEN = np.array([VISEME_SHAPES[v][0] for v in VISEMES], np.float32)
_SPREAD = np.array([VISEME_SHAPES[v][1] for v in VISEMES], np.float32)
_PP = VISEMES.index("PP")
_G2P = G2P()


@dataclass(frozen=True)
class VisemeOptions:
    """How visemes shape the loudness-driven openness: ``(1 - shape_weight) + shape_weight * shape``
    of it remains (a full ``aa`` keeps all of it, a closed shape ``1 - shape_weight``), and
    spread reaches the viseme's value once openness is ``1 / spread_onset``."""

    shape_weight: float = 0.5
    spread_onset: float = 3.0


@dataclass(frozen=True)
class MouthTrack:
    """Per-frame mouth controls and where they came from (``timings``, ``text`` or ``audio``)."""

    openness: np.ndarray
    spread: np.ndarray
    source: str


def mouth_track(
    features: SpeechFeatures,
    fps: int,
    timings: Sequence[Timing] = (),
    text: str | None = None,
    mouth: MouthOptions = MouthOptions(),
    options: VisemeOptions = VisemeOptions(),
) -> MouthTrack:
    """Openness and spread for every frame of ``features`` (see the module docstring)."""
    frames = len(features.level_db)
    duration = frames / fps
    loud = loudness(features, mouth)
    phonemes: Phonemes | None = None
    source = "audio"
    if timings:
        phonemes, source = from_timings(timings, duration, _G2P), "timings"
    if phonemes is None and text and text.strip():
        phonemes, source = from_text(text, loud > 0, fps, duration, _G2P), "text"
    if phonemes is None or not phonemes.segments:
        openness = mouth_openness(features, fps, mouth)
        return MouthTrack(openness, mouth_spread(features, openness, fps), "audio")

    weights = viseme_weights(phonemes, frames, fps)
    heard = mouth_openness(features, fps, mouth)
    shaped = (1.0 - options.shape_weight) + options.shape_weight * (weights @ _OPEN)
    closed = (1.0 - weights[:, _PP]) ** 2
    openness = np.clip(heard * shaped * closed, 0.0, 1.0).astype(np.float32)
    openness[openness < mouth.rest_below] = 0.0
    spread = (weights @ _SPREAD) * np.clip(options.spread_onset * heard, 0.0, 1.0)
    return MouthTrack(openness, np.clip(spread, -1.0, 1.0).astype(np.float32), source)


def viseme_weights(phonemes: Phonemes, frames: int, fps: int) -> np.ndarray:
    """``(frames, 15)`` viseme weights (rows sum to 1) sampled at the middle of each frame."""
    mapping = IPA_MAPPING if phonemes.alphabet == "ipa" else None
    times, matrix = build_viseme_curves(list(phonemes.segments), fps=float(fps), mapping=mapping)
    centres = (np.arange(frames) + 0.5) / fps
    out = np.zeros((frames, len(VISEMES)), np.float32)
    if len(times) == 0:
        out[:, 0] = 1.0
        return out
    for column in range(matrix.shape[1]):
        out[:, column] = np.interp(centres, times, matrix[:, column], left=matrix[0, column],
                                   right=matrix[-1, column])
    total = out.sum(axis=1, keepdims=True)
    out /= np.where(total > 1e-6, total, 1.0)
    out[total[:, 0] <= 1e-6, 0] = 1.0
    return out


def loudness(features: SpeechFeatures, options: MouthOptions = MouthOptions()) -> np.ndarray:
    """Per-frame loudness in [0, 1]: 0 at or below the silence gate, 1 at the speech reference level."""
    level = features.level_db
    voiced = level[level > options.floor_dbfs]
    if voiced.size == 0:
        return np.zeros_like(level)
    reference = float(np.percentile(voiced, options.reference_percentile))
    gate = max(reference - options.gate_db, options.floor_dbfs)
    return np.clip((level - gate) / max(reference - gate, 1e-3), 0.0, 1.0).astype(np.float32)
