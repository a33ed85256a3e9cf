"""The TTS backend interface and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from workers.registry import ModelLifecycle, Registry
from workers.settings import Settings
from workers.timing import backend_call


@dataclass(frozen=True)
class TTSCapabilities:
    languages: tuple[str, ...] = ("en",)
    streaming: bool = False
    gpu: bool = False


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class TTSBackend(ModelLifecycle, ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def synthesize(self, text: str, voice: str | None = None, language: str | None = None) -> Speech:
        """Speak ``text``; ``voice`` None means the configured default voice."""
        self.load()
        with backend_call("tts", self.name):
            return self._synthesize(text, voice, language)

    @abstractmethod
    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech: ...


registry: Registry[TTSBackend] = Registry("tts", "workers.tts.backends")
