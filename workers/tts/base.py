"""The TTS backend interface and registry.

A backend implements ``_synthesize`` for one sentence and returns the audio at
its own rate, with phoneme timings when the model gives them. The public
``synthesize`` does what is the same for every backend: it splits the text into
sentences (``contracts.text.sentences``), serves sentences from the phrase cache when
one is given, finishes each sentence (trimmed, resampled to ``tts.sample_rate``,
loudness-normalised; ``workers.tts.finish``) and joins them with a short pause.
So every backend and voice comes out at the same rate and level.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from contracts.errors import PermanentError
from contracts.settings import Settings
from contracts.text.sentences import split_sentences
from contracts.voices import VoiceInfo
from pipeline.calls import backend_call
from pipeline.metrics import TTS_RTF, TTS_SYNTHESIS_SECONDS
from pipeline.registry import ModelLifecycle, Registry
from workers.tts.finish import finish_sentence, join
from workers.tts.phrases import PhraseCache, phrase_key
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
        """Speak ``text`` sentence by sentence; ``voice`` None means the backend's default voice.

        Returns float32 mono at ``tts.sample_rate`` with timings (seconds from the
        start of the returned audio). Text with nothing speakable raises
        ``PermanentError`` (``empty_text``).
        """
        sentences = [s for s in split_sentences(text or "", language) if any(c.isalnum() for c in s)]
        if not sentences:
            raise PermanentError("there is no text to speak", code="empty_text")
        self.load()
        started = time.perf_counter()
        with backend_call("tts", self.name):
            parts = [(sentence, self._speak_sentence(sentence, voice, language, cache)) for sentence in sentences]
        if not any(len(speech.samples) for _, speech in parts):
            raise PermanentError(f"nothing speakable in the text {text[:80]!r}", code="empty_text")
        tts = self.settings.tts
        speech = join(parts, tts.sample_rate, tts.sentence_pause_seconds)
        seconds = time.perf_counter() - started
        TTS_SYNTHESIS_SECONDS.labels(self.name).observe(seconds)
        if len(speech.samples):
            TTS_RTF.labels(self.name).observe(seconds / (len(speech.samples) / speech.sample_rate))
        return speech

    def _speak_sentence(self, sentence: str, voice: str | None, language: str | None,
                        cache: PhraseCache | None) -> Speech:
        key = None
        if cache is not None and cache.accepts(sentence):
            key = phrase_key(sentence, self.name, self.version, self.model_id(voice), self.voice_id(voice),
                             language, self.settings)
            cached = cache.get(key)
            if cached is not None:
                return cached
        speech = finish_sentence(self._synthesize(sentence, voice, language), sentence, self.settings.tts)
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
        """Speak one sentence: samples at the backend's own rate, phoneme timings if the model has them."""


registry: Registry[TTSBackend] = Registry("tts", "workers.tts.backends")
