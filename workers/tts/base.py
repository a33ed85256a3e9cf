"""The TTS backend interface and registry.

A backend implements ``_synthesize`` for one piece of spoken text (a sentence,
or the part of one between two pauses) and returns the audio at its own rate,
with phoneme timings when the model gives them. What is the same for every
backend is done around it. ``synthesize`` reads the written text through the
spoken-text front end (``contracts.text``: Markdown, numbers, dates, symbols,
pauses) and says it piece by piece with silences between (``workers.tts.speaking``);
``speak`` says one piece: from the phrase cache when one is given, else
synthesised and finished (trimmed, resampled to ``tts.sample_rate``,
loudness-normalised; ``workers.tts.finish``). So every backend and voice comes
out at the same rate and level and reads the same text the same way.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from contracts.errors import PermanentError
from contracts.settings import Settings
from contracts.text.spoken import to_spoken
from contracts.voices import VoiceInfo
from pipeline.calls import backend_call
from pipeline.metrics import TTS_RTF, TTS_SYNTHESIS_SECONDS
from pipeline.registry import ModelLifecycle, Registry
from workers.tts.finish import finish_sentence
from workers.tts.phrases import PhraseCache, phrase_key
from workers.tts.speaking import Voice, say
from workers.tts.speech import Speech, Timing

__all__ = ["Speech", "TTSBackend", "TTSCapabilities", "Timing", "VoiceInfo", "registry"]


@dataclass(frozen=True)
class TTSCapabilities:
    languages: tuple[str, ...] = ("en",)
    streaming: bool = False
    gpu: bool = False
    # The backend returns phoneme timings from its model (otherwise word timings are estimated).
    phoneme_timings: bool = False


class TTSBackend(ModelLifecycle, ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def synthesize(self, text: str, voice: str | None = None, language: str | None = None,
                   cache: PhraseCache | None = None) -> Speech:
        """Say ``text`` as written (Markdown, numbers, symbols): what ``to_spoken`` says, with its pauses.

        ``voice`` None means the backend's default voice; every language of the text goes to it
        (the TTS task routes the languages of a mixed text to their voices). Returns float32 mono
        at ``tts.sample_rate`` with timings (seconds from the start of the returned audio). Text
        with nothing to say raises ``PermanentError`` (``empty_text``).
        """
        spoken = to_spoken(text or "", language)
        if not spoken.has_speech:
            raise PermanentError("there is no text to speak", code="empty_text")
        own = Voice(self, voice)
        return say(spoken, lambda _: own, self.settings.tts.sentence_pause_seconds, cache)

    def speak(self, text: str, voice: str | None, language: str | None, cache: PhraseCache | None = None) -> Speech:
        """One piece of spoken text (already through the front end), finished; from ``cache`` when it has it."""
        key = None
        if cache is not None and cache.accepts(text):
            key = phrase_key(text, self.name, self.version, self.model_id(voice), self.voice_id(voice),
                             language, self.settings)
            cached = cache.get(key)
            if cached is not None:
                return cached
        self.load()
        started = time.perf_counter()
        with backend_call("tts", self.name):
            raw = self._synthesize(text, voice, language)
        seconds = time.perf_counter() - started
        TTS_SYNTHESIS_SECONDS.labels(self.name).observe(seconds)
        if len(raw.samples):
            TTS_RTF.labels(self.name).observe(seconds / (len(raw.samples) / raw.sample_rate))
        speech = finish_sentence(raw, text, self.settings.tts)
        if key is not None and cache is not None and len(speech.samples):
            cache.put(key, speech)
        return speech

    def voice_id(self, voice: str | None) -> str:
        """The voice that ``voice`` resolves to (None: the default), for cache keys."""
        return voice or ""

    def model_id(self, voice: str | None) -> str:
        """Identity of the model files that speak ``voice`` (for cache keys); cheap, never loads a model."""
        return ""

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        """The voices this backend offers under ``settings``, found cheaply (no model is loaded)."""
        return []

    @abstractmethod
    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        """Speak one piece of spoken text: samples at the backend's own rate, phoneme timings if the model has them."""


registry: Registry[TTSBackend] = Registry("tts", "workers.tts.backends")
