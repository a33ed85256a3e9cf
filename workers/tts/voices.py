"""Which voices the TTS stage offers, and which of its backends speaks a job.

The configured backends are ``tts.backend`` (the default), the backends of
``tts.backend_for_language`` and ``tts.extra_backends``
(``TTSSettings.backend_names``). ``VoiceCatalog`` lists their voices from
settings and folders only (``TTSBackend.list_voices``: no model is loaded); the
workers publish the list in the stage's offer (``offer_extras``), from which the
coordinator answers ``GET /v1/voices`` and refuses an unknown voice at
submission. ``route`` picks the backend of one job:

1. a named voice is spoken by the backend that has it, the language's backend
   first where several have a voice of that name;
2. otherwise the job's language (primary subtag: "zh-CN" → "zh") picks the
   backend through ``tts.backend_for_language``;
3. otherwise ``tts.backend``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from contracts.errors import PermanentError, StageError
from contracts.settings import Settings
from contracts.voices import VoiceInfo, backend_for_language, find_voice
from workers.tts.base import registry

log = logging.getLogger(__name__)


class VoiceCatalog:
    """The configured backends' voices, listed again at most every ``ttl_seconds``."""

    def __init__(self, settings: Settings, ttl_seconds: float = 30.0) -> None:
        self.settings = settings
        self._ttl = ttl_seconds
        self._voices: list[VoiceInfo] = []
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def voices(self) -> list[VoiceInfo]:
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl:
                self._voices = self._list()
                self._read_at = time.monotonic()
            return list(self._voices)

    def _list(self) -> list[VoiceInfo]:
        voices: list[VoiceInfo] = []
        for index, name in enumerate(self.settings.tts.backend_names()):
            try:
                listed = registry.get(name).list_voices(self.settings)
            except StageError as e:
                log.warning("cannot list the voices of TTS backend %s: %s", name, e.message)
                continue
            # Only the default backend's default voice is the farm's default.
            voices.extend(v if index == 0 or not v.default else
                          VoiceInfo(v.name, v.backend, v.languages, default=False) for v in listed)
        return voices

    def language_backend(self, language: str | None) -> str:
        tts = self.settings.tts
        return backend_for_language(tts.backend_for_language, tts.backend, language)

    def find(self, voice: str, language: str | None = None) -> VoiceInfo | None:
        """The voice named ``voice``, preferring the one of the backend that speaks ``language``."""
        return find_voice(self.voices(), voice, self.language_backend(language))

    def route(self, voice: str | None, language: str | None) -> str:
        """The name of the backend that speaks a job with this voice and language."""
        if voice is None:
            return self.language_backend(language)
        found = self.find(voice, language)
        if found is None:
            names = ", ".join(sorted({v.name for v in self.voices()})) or "(none)"
            raise PermanentError(f"unknown voice {voice!r}; available voices: {names}", code="unknown_voice")
        return found.backend


def offer_extras(settings: Settings) -> dict[str, Any]:
    """What the TTS stage's offer adds (``pipeline.stages``): its voices and language routes."""
    return {"voices": VoiceCatalog(settings).voices(),
            "language_routes": dict(settings.tts.backend_for_language),
            "default_backend": settings.tts.backend}
