"""The ASR backend interface and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from cache.keys import content_hash
from contracts.errors import PermanentError
from contracts.settings import Settings
from pipeline.calls import backend_call
from pipeline.registry import ModelLifecycle, Registry

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
    language_probability: float  # 1.0 when the language was forced
    speech_seconds: float  # audio left after voice activity detection

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Transcription | None":
        """The transcription a ``to_dict`` wrote, or None when ``data`` is not one (a stale cache entry)."""
        try:
            return cls(text=str(data["text"]), language=str(data["language"]),
                       language_probability=float(data["language_probability"]),
                       speech_seconds=float(data["speech_seconds"]))
        except (KeyError, TypeError, ValueError):
            return None


class ASRBackend(ModelLifecycle, ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[ASRCapabilities] = ASRCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcription:
        """Transcribe 16 kHz mono float32 audio. ``language`` forces the language; None detects it.

        Raises ``PermanentError`` with code ``no_speech`` when the audio holds no speech,
        ``audio_too_long`` when it is longer than ``limits.max_audio_seconds`` and
        ``unsupported_language`` when the model cannot transcribe the forced language.
        """
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        limit = self.settings.limits.max_audio_seconds
        if samples.size > limit * SAMPLE_RATE:
            raise PermanentError(
                f"the audio lasts {samples.size / SAMPLE_RATE:.1f} s; the limit is {limit:g} s",
                code="audio_too_long",
            )
        self.load()
        with backend_call("asr", self.name):
            return self._transcribe(samples, language)

    def result_key(self, audio_hash: str, language: str | None) -> str:
        """Cache key of this backend's transcript of the audio whose content hash is ``audio_hash``."""
        return content_hash("asr", audio_hash, self.name, self.version, self.output_options(), language)

    def output_options(self) -> dict[str, Any]:
        """What shapes the transcript besides the audio (model, decoding options); part of the cache key."""
        return {}

    @abstractmethod
    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcription: ...


registry: Registry[ASRBackend] = Registry("asr", "workers.asr.backends")
