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

``say`` says a text in several languages run by run (``workers.tts.speaking``):
``route_language`` picks the voice of each run, the job's own where it speaks the
run's language, else a voice of that language; a text whose main language no
configured voice speaks (``speaks``) is refused with ``unsupported_language``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from contracts.errors import PermanentError, StageError
from contracts.settings import Settings
from contracts.text.sentences import primary_language
from contracts.text.spoken import FRONTEND_VERSION, Spoken
from contracts.voices import VoiceInfo, backend_for_language, find_voice, languages_of
from pipeline.runtime import loaded
from workers.tts.base import Speech, registry
from workers.tts.phrases import PhraseCache
from workers.tts.speaking import Voice, say

log = logging.getLogger(__name__)


class VoiceCatalog:
    """The configured backends' voices, listed again at most every ``ttl_seconds``."""

    def __init__(self, settings: Settings, ttl_seconds: float = 30.0) -> None:
        self.settings = settings
        self._ttl = ttl_seconds
        self._voices: list[VoiceInfo] = []
        self._defaults: dict[str, VoiceInfo] = {}  # backend → the voice it speaks when none is named
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def voices(self) -> list[VoiceInfo]:
        return list(self._read()[0])

    def _read(self) -> tuple[list[VoiceInfo], dict[str, VoiceInfo]]:
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl:
                self._voices, self._defaults = self._list()
                self._read_at = time.monotonic()
            return self._voices, self._defaults

    def _list(self) -> tuple[list[VoiceInfo], dict[str, VoiceInfo]]:
        voices: list[VoiceInfo] = []
        defaults: dict[str, VoiceInfo] = {}
        for index, name in enumerate(self.settings.tts.backend_names()):
            try:
                listed = registry.get(name).list_voices(self.settings)
            except StageError as e:
                log.warning("cannot list the voices of TTS backend %s: %s", name, e.message)
                continue
            if listed:
                defaults[name] = next((v for v in listed if v.default), listed[0])
            # Only the default backend's default voice is the farm's default.
            voices.extend(v if index == 0 or not v.default else
                          VoiceInfo(v.name, v.backend, v.languages, default=False) for v in listed)
        return voices, defaults

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

    def speaks(self, language: str) -> bool:
        """Whether any configured voice speaks ``language`` (a primary subtag: "zh")."""
        return language in languages_of(self.voices())

    def say(self, spoken: Spoken, voice: str | None, cache: PhraseCache | None = None) -> Speech:
        """Say ``spoken`` (``workers.tts.speaking.say``), each language by a voice of it, the backends loaded
        in this process. A text whose main language no voice speaks is refused (``unsupported_language``)."""
        main = next(iter(spoken.languages), None)
        if main is not None and not self.speaks(main):
            supported = ", ".join(languages_of(self.voices())) or "(none)"
            raise PermanentError(f"no installed voice speaks {main}; the voices speak {supported}",
                                 code="unsupported_language")
        chosen: dict[str, Voice] = {}

        def voice_for(run: str) -> Voice:
            if run not in chosen:
                name, voice_name = self.route_language(voice, spoken.language, run)
                chosen[run] = Voice(loaded(registry, name), voice_name)
            return chosen[run]
        return say(spoken, voice_for, self.settings.tts.sentence_pause_seconds, cache)

    def route_language(self, voice: str | None, language: str | None, run: str) -> tuple[str, str | None]:
        """The backend and voice that say a run of text in language ``run`` of a job with this voice and language.

        The job's own (``route``) where it speaks ``run``; else the backend of ``run``'s route with its
        default voice, where that voice speaks it; else any voice that speaks it; else the job's own
        (best effort, for a short run in a language no voice speaks).
        """
        own = self.route(voice, language)
        voices, defaults = self._read()
        named = self.find(voice, language) if voice is not None else None

        def speaks(info: VoiceInfo | None) -> bool:
            return info is not None and run in {primary_language(tag) for tag in info.languages}

        if speaks(named if voice is not None else defaults.get(own)):
            return own, voice
        routed = self.language_backend(run)
        if speaks(defaults.get(routed)):
            return routed, None
        other = next((v for v in voices if speaks(v)), None)
        if other is not None:
            return other.backend, other.name
        log.warning("no voice speaks %s; a run of it goes to the job's own voice", run)
        return own, voice


def offer_extras(settings: Settings) -> dict[str, Any]:
    """What the TTS stage's offer adds (``pipeline.stages``): its voices and language routes, and the version
    of the spoken-text front end it reads texts with (a new reading must not be served from the video cache)."""
    return {"voices": VoiceCatalog(settings).voices(),
            "language_routes": dict(settings.tts.backend_for_language),
            "default_backend": settings.tts.backend,
            "frontend": FRONTEND_VERSION}
