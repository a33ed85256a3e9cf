"""The phrase cache: finished pieces of speech, served without synthesis when they come again.

Greetings, apologies and the fallback reply are spoken over and over; each
finished piece (a sentence, or the part of one between two pauses or in one
language; trimmed, resampled, normalised, with its timings) is stored in the LRU
cache Redis through ``cache.store.Cache`` (namespace ``tts_phrases``, 16-bit PCM
as base64 in JSON) under a key made of the text as it is said (the front end's
output: what the backend was given, so a new reading of a written text is a new
key), the backend's name and version, the model's identity, the voice, the
language and the output format. Hits and misses are counted there
(``talkfarm:stats:tts_phrases_cache`` after the farm's ``queue_prefix``). A cache that is down is a miss.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from cache.keys import content_hash
from cache.store import Cache
from contracts.text.sentences import primary_language
from workers.tts.finish import normalise_text
from workers.tts.speech import Speech, Timing

if TYPE_CHECKING:
    from contracts.settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = "tts_phrases"


def phrase_key(text: str, backend: str, version: str, model: str, voice: str, language: str | None,
               settings: "Settings") -> str:
    """Key of one finished piece of spoken text; everything that changes its audio is in it."""
    tts = settings.tts
    return content_hash("tts-phrase", normalise_text(text), backend, version, model, voice,
                        primary_language(language) or "", tts.sample_rate, tts.loudness_dbfs, tts.peak_dbfs)


def encode(speech: Speech) -> dict[str, Any]:
    pcm = (np.clip(speech.samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    return {
        "rate": speech.sample_rate,
        "pcm16": base64.b64encode(pcm.tobytes()).decode("ascii"),
        "from_model": speech.timings_from_model,
        "timings": [[t.start, t.end, t.label, t.kind] for t in speech.timings],
    }


def decode(value: dict[str, Any]) -> Speech | None:
    """The stored speech, or None for an entry this code cannot read (treated as a miss)."""
    try:
        pcm = np.frombuffer(base64.b64decode(value["pcm16"]), dtype="<i2")
        timings = tuple(Timing(float(s), float(e), str(label), str(kind)) for s, e, label, kind in value["timings"])
        return Speech(pcm.astype(np.float32) / 32767.0, int(value["rate"]), timings, bool(value["from_model"]))
    except (KeyError, TypeError, ValueError) as e:
        log.warning("unreadable phrase cache entry: %s", e)
        return None


class PhraseCache:
    """Finished pieces of speech by ``phrase_key`` in the LRU cache Redis."""

    def __init__(self, store: Cache, max_chars: int) -> None:
        self.store = store
        self.max_chars = max_chars

    @classmethod
    def from_settings(cls, settings: "Settings") -> "PhraseCache":
        tts = settings.tts
        return cls(Cache.from_settings(settings, NAMESPACE, tts.phrase_cache_ttl_seconds),
                   tts.phrase_cache_max_chars)

    def accepts(self, text: str) -> bool:
        """Whether a piece is short enough to cache (long ones rarely come again)."""
        return len(normalise_text(text)) <= self.max_chars

    def get(self, key: str) -> Speech | None:
        value = self.store.get(key)
        return None if value is None else decode(value)

    def put(self, key: str, speech: Speech) -> bool:
        return self.store.put(key, encode(speech))

    def stats(self) -> dict[str, int]:
        return self.store.stats()
