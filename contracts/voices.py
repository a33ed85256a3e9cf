"""The voices a job may name, and which TTS backend speaks a language.

The TTS workers list their backends' voices (no model loaded) and publish them in
their stage's offer (``contracts.catalog``); the coordinator answers
``GET /v1/voices`` and refuses an unknown voice from that list, and the TTS stage
routes each job with the same two functions, so both sides decide alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from contracts.text.sentences import primary_language


@dataclass(frozen=True)
class VoiceInfo:
    """A voice a request may name: its name, the backend that speaks it and its languages."""

    name: str
    backend: str
    languages: tuple[str, ...]
    default: bool = False


def backend_for_language(routes: Mapping[str, str], default: str, language: str | None) -> str:
    """The backend that speaks ``language`` through ``routes`` (language tag → backend); ``default``
    when it is unmapped or unknown. Tags compare by primary subtag: "zh-CN" is "zh"."""
    primary = primary_language(language)
    by_primary = {primary_language(tag) or tag: name for tag, name in routes.items()}
    return by_primary.get(primary or "", default)


def find_voice(voices: Sequence[VoiceInfo], name: str, preferred_backend: str | None = None) -> VoiceInfo | None:
    """The voice called ``name``, the one of ``preferred_backend`` first where several backends have it."""
    matches = [v for v in voices if v.name == name]
    return next((v for v in matches if v.backend == preferred_backend), matches[0] if matches else None)


def languages_of(voices: Sequence[VoiceInfo]) -> list[str]:
    """The primary languages the voices speak, sorted."""
    return sorted({primary_language(tag) or tag for voice in voices for tag in voice.languages})
