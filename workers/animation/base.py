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


@dataclass(frozen=True)
class AnimationCapabilities:
    batching: bool = False
    gpu: bool = False


@dataclass(frozen=True)
class RenderRequest:
    portrait: bytes  # the image file as uploaded (any format OpenCV reads)
    audio: np.ndarray  # float32 mono speech in [-1, 1]
    sample_rate: int
    output: Path  # where the MP4 is written (a private scratch path)
    text: str | None = None


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

        Raises ``PermanentError`` with code ``no_face`` (or ``bad_image``) for unusable portraits.
        """
        self.load()
        with backend_call("animation", self.name):
            return self._render(request)

    @abstractmethod
    def _render(self, request: RenderRequest) -> RenderResult: ...


registry: Registry[AnimationBackend] = Registry("animation", "workers.animation.backends")
