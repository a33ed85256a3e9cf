"""When each phoneme or word of a speech recording is spoken: what the TTS stage hands the animation stage.

The TTS task stores the document as a JSON artifact (``timings_key`` on the payload);
the animation stage reads it back for the mouth shapes:

    {"kind": "phoneme" | "word", "source": "model" | "estimate", "seconds": 2.4,
     "items": [{"start": 0.05, "end": 0.12, "label": "h"}, ...]}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal, Sequence

log = logging.getLogger(__name__)

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


def timings_document(timings: Sequence[Timing], from_model: bool, seconds: float) -> dict[str, Any] | None:
    """The JSON document of ``timings`` (None when there are none) for audio lasting ``seconds``."""
    if not timings:
        return None
    return {
        "kind": timings[0].kind,
        "source": "model" if from_model else "estimate",
        "seconds": round(seconds, 4),
        "items": [{"start": round(t.start, 4), "end": round(t.end, 4), "label": t.label} for t in timings],
    }


def encode_timings(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def decode_timings(raw: bytes) -> tuple[Timing, ...]:
    """The timings of a stored document; an unreadable one gives none (the text still serves the mouth)."""
    try:
        document = json.loads(raw)
        kind = str(document.get("kind", "phoneme"))
        return tuple(Timing(float(item["start"]), float(item["end"]), str(item["label"]), kind)
                     for item in document.get("items", []))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("ignoring an unreadable timings document: %s", e)
        return ()
