"""What a TTS backend returns: audio samples and, where known, when each phoneme or word is spoken.

``Timing`` is the contract with the animation stage (``contracts.timings``);
``workers.tts.base`` re-exports ``Speech`` and ``Timing``; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from contracts.timings import Timing

__all__ = ["Speech", "Timing"]


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    timings: tuple[Timing, ...] = field(default=())
    # True when the timings are the backend's own (phoneme alignments); False when
    # they are word timings estimated from the text and the length of each sentence.
    timings_from_model: bool = False

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate
