"""What a TTS backend returns: audio samples and, where known, when each phoneme or word is spoken.

``workers.tts.base`` re-exports ``Speech`` and ``Timing``; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

TimingKind = Literal["phoneme", "word"]


@dataclass(frozen=True)
class Timing:
    """One phoneme or word: seconds from the start of the audio it belongs to.

    Phoneme labels are IPA (Piper speaks through espeak-ng's IPA; flite's ARPAbet
    is mapped to IPA), so the animation stage maps one alphabet to mouth shapes.
    Word labels are the words of the text; for CJK text each character is a word.
    """

    start: float
    end: float
    label: str
    kind: str  # TimingKind

    def shifted(self, offset: float) -> "Timing":
        return Timing(self.start + offset, self.end + offset, self.label, self.kind)


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


def timings_document(speech: Speech) -> dict[str, Any] | None:
    """The JSON artifact the TTS task stores for the animation stage, or None without timings.

    ``{"kind": "phoneme" | "word", "source": "model" | "estimate", "items": [{"start", "end", "label"}]}``
    """
    if not speech.timings:
        return None
    return {
        "kind": speech.timings[0].kind,
        "source": "model" if speech.timings_from_model else "estimate",
        "seconds": round(speech.seconds, 4),
        "items": [
            {"start": round(t.start, 4), "end": round(t.end, 4), "label": t.label} for t in speech.timings
        ],
    }
