"""The ASR backend interface and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from workers.registry import ModelLifecycle, Registry
from workers.settings import Settings
from workers.timing import backend_call

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class ASRCapabilities:
    languages: tuple[str, ...] = ()  # empty: multilingual
    streaming: bool = False
    batching: bool = False
    gpu: bool = False


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str
    language_probability: float
    speech_seconds: float


class ASRBackend(ModelLifecycle, ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[ASRCapabilities] = ASRCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcription:
        """Transcribe 16 kHz mono float32 audio. ``language`` forces the language; None detects it.

        Raises ``PermanentError`` with code ``no_speech`` when the audio holds no speech.
        """
        self.load()
        with backend_call("asr", self.name):
            return self._transcribe(audio, language)

    @abstractmethod
    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcription: ...


registry: Registry[ASRBackend] = Registry("asr", "workers.asr.backends")
