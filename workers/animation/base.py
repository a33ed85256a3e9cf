"""The animation backend interface and registry.

``AnimationBackend.render`` does what every backend needs around its own
``_render``: it checks the speech (a usable rate, mono), loads the model, times
the call and translates what escapes it (``pipeline.calls.backend_call``), and
logs the frame rate. ``video_writer`` gives a backend the MP4 writer for its
frames with the speech muxed in; a failing scratch volume is a transient error.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from contracts.errors import PermanentError, TransientError
from contracts.settings import Settings
from contracts.timings import Timing
from pipeline.calls import backend_call
from pipeline.metrics import ANIMATION_FPS, ANIMATION_TARGET_FPS
from pipeline.registry import ModelLifecycle, Registry
from workers.animation.encoder import EncoderOptions, VideoWriter, as_mono

log = logging.getLogger(__name__)


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
        if request.sample_rate <= 0:
            raise PermanentError(f"invalid sample rate {request.sample_rate}", code="bad_audio")
        try:
            audio = as_mono(request.audio)
        except ValueError as e:
            raise PermanentError(f"the speech audio is unusable: {e}", code="bad_audio") from e
        self.load()
        started = time.perf_counter()
        with backend_call("animation", self.name):
            result = self._render(replace(request, audio=audio))
        elapsed = time.perf_counter() - started
        ANIMATION_FPS.labels(self.name).observe(result.frames / max(elapsed, 1e-9))
        ANIMATION_TARGET_FPS.labels(self.name).set(self.settings.animation.fps)
        log.info("%s rendered %d frames at %dx%d in %.2f s (%.1f fps)", self.name, result.frames, result.width,
                 result.height, elapsed, result.frames / max(elapsed, 1e-9))
        return result

    @contextmanager
    def video_writer(self, request: RenderRequest, width: int, height: int,
                     encoder: EncoderOptions = EncoderOptions()) -> Iterator[VideoWriter]:
        """The H.264 + AAC writer of ``request.output`` at the stage's frame rate, the speech muxed in."""
        try:
            with VideoWriter(request.output, width, height, self.settings.animation.fps, request.audio,
                             request.sample_rate, crf=encoder.crf, preset=encoder.preset,
                             threads=encoder.threads) as writer:
                yield writer
        except OSError as e:
            # A full or failing scratch volume; another attempt (or worker) may succeed.
            raise TransientError(f"writing the video failed ({type(e).__name__}, errno {e.errno})") from e

    @abstractmethod
    def _render(self, request: RenderRequest) -> RenderResult:
        """Write the video of ``request`` (its ``audio`` is mono float32 at ``sample_rate`` > 0)."""


registry: Registry[AnimationBackend] = Registry("animation", "workers.animation.backends")
