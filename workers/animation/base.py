"""The animation backend interface and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from workers.registry import ModelLifecycle, Registry
from workers.settings import Settings
from workers.timing import backend_call
from workers.tts.base import Timing


@dataclass(frozen=True)
class AnimationCapabilities:
    batching: bool = False
    gpu: bool = False


@dataclass(frozen=True)
class RenderRequest:
    portrait: bytes  # the image file as uploaded (any format Pillow reads)
    audio: np.ndarray  # float32 mono speech in [-1, 1]
    sample_rate: int
    output: Path  # where the MP4 is written (a private scratch path)
    text: str | None = None  # the words spoken, when known (not in lipsync mode)
    # Phoneme or word timings of ``audio`` from the TTS stage (seconds from its start).
    timings: tuple[Timing, ...] = ()
    face_index: int = 0  # which face to animate, 0 the largest
    # The portrait's artifact key; keys the preparation cache (None: the bytes' hash).
    portrait_key: str | None = None
    # A sentence segment of a streamed reply: start and end in the rest pose (no head offset, no
    # blink), so that consecutive segments join without a visible jump.
    segment: bool = False


@dataclass(frozen=True)
class RenderResult:
    frames: int
    width: int
    height: int
    seconds: float  # duration of the video


class AnimationBackend(ModelLifecycle, ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[AnimationCapabilities] = AnimationCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def render(self, request: RenderRequest) -> RenderResult:
        """Render the talking-head MP4 (H.264 + AAC, faststart) to ``request.output``.

        Raises ``PermanentError`` for unusable portraits: ``bad_image``, ``image_too_large``,
        ``no_face`` (also for a ``face_index`` beyond the faces found), ``face_too_small``,
        ``face_not_frontal``; and ``bad_audio`` for unusable speech.
        """
        self.load()
        with backend_call("animation", self.name):
            return self._render(request)

    @abstractmethod
    def _render(self, request: RenderRequest) -> RenderResult: ...


registry: Registry[AnimationBackend] = Registry("animation", "workers.animation.backends")
