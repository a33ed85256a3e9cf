"""The embedded CPU animator: dlib landmarks, viseme-driven mouth shapes, blinks, OpenCV warping.

No lip-sync network ships in any package we can install, so this backend is
classical. The portrait is prepared once (``PortraitPreparer``: decode at
render size, faces, landmarks; cached by content). The mouth follows visemes
from the TTS stage's phoneme timings, or from the text aligned to the audio,
or the audio alone in lipsync mode (``workers.animation.landmark.visemes``); a
piecewise-affine warp over the landmark mesh moves lips and jaw from a
closed-lipped neutral pose, and a painted cavity fills the opened mouth.
Eyes blink at random intervals and the head drifts by under a pixel. Frames
are encoded as they are drawn. Output is deterministic for a given portrait,
speech and text.

OpenCV, dlib and openfacefx are imported in ``_load`` and ``_render`` so that
discovering the registry does not need the ``talkfarm[animation]`` extra.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from contracts.errors import ModelMissingError
from contracts.settings import Settings
from workers.animation.base import AnimationBackend, AnimationCapabilities, RenderRequest, RenderResult, registry
from workers.animation.encoder import EncoderOptions, frame_count
from workers.animation.landmark.motion import (
    MouthOptions,
    RigOptions,
    blink_curve,
    edge_envelope,
    head_drift,
    speech_features,
)
from workers.animation.prepare import INSTALL_HINT, landmark_model_path

if TYPE_CHECKING:
    from workers.animation.landmark.visemes import VisemeOptions
    from workers.animation.portrait_cache import PortraitPreparer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LandmarkOptions:
    """Knobs of the landmark animator; the defaults are what the farm ships."""

    mouth: MouthOptions = MouthOptions()
    visemes: VisemeOptions | None = None  # None: ``VisemeOptions()``
    rig: RigOptions = RigOptions()
    head_motion_px: float = 0.5  # 0 keeps the head perfectly still
    blink_interval_s: tuple[float, float] = (2.0, 6.0)
    blink_seconds: float = 0.2
    encoder: EncoderOptions = EncoderOptions()


@registry.register("landmark")
class LandmarkAnimator(AnimationBackend):
    """Talking head from one photo on the CPU: one face analysis, then a mesh warp per frame."""

    version = "2"
    capabilities = AnimationCapabilities(batching=False, gpu=False)

    def __init__(self, settings: Settings, options: LandmarkOptions | None = None) -> None:
        super().__init__(settings)
        self.options = options or LandmarkOptions()
        self.preparer: PortraitPreparer | None = None

    def check(self) -> None:
        """Raise ``ModelMissingError`` when OpenCV, dlib or the landmark model cannot be found."""
        for module in ("cv2", "dlib", "openfacefx", "PIL"):
            if importlib.util.find_spec(module) is None:
                raise ModelMissingError(f"the landmark animator needs {module}; {INSTALL_HINT}")
        landmark_model_path(self.settings.model_dir)

    def _load(self) -> None:
        path = landmark_model_path(self.settings.model_dir)
        try:
            import workers.animation.landmark.visemes  # noqa: F401  (openfacefx, imported once here)
            from workers.animation.faces import FaceModels
            from workers.animation.portrait_cache import PortraitPreparer
        except ImportError as e:
            raise ModelMissingError(
                f"the landmark animator needs OpenCV, dlib, Pillow and openfacefx ({e}); {INSTALL_HINT}"
            ) from e
        started = time.perf_counter()
        self.preparer = PortraitPreparer.from_settings(self.settings, FaceModels(path))
        log.info("loaded face models from %s in %.2f s", path, time.perf_counter() - started)

    def _unload(self) -> None:
        self.preparer = None

    def _render(self, request: RenderRequest) -> RenderResult:
        from workers.animation.landmark.face_rig import FaceRig
        from workers.animation.landmark.visemes import VisemeOptions, mouth_track

        if self.preparer is None:
            raise RuntimeError("the landmark animator is not loaded")
        audio = request.audio
        fps = self.settings.animation.fps
        portrait = self.preparer.prepare(request.portrait, request.face_index, request.portrait_key)
        frames = frame_count(len(audio), request.sample_rate, fps)

        options = self.options
        features = speech_features(audio, request.sample_rate, fps, frames)
        mouth = mouth_track(features, fps, request.timings, request.text, options.mouth,
                            options.visemes or VisemeOptions())
        # Seeded by the inputs: the same portrait and speech always give the same video.
        rng = np.random.default_rng(zlib.crc32(request.portrait) ^ zlib.crc32(audio.tobytes()))
        blinks = blink_curve(frames, fps, rng, options.blink_interval_s, options.blink_seconds)
        drift = head_drift(frames, fps, rng, options.head_motion_px)
        if request.segment:
            # Joined to other segments: start and end in the rest pose, so the seams do not jump.
            envelope = edge_envelope(frames, fps)
            drift = drift * envelope[:, None]
            blinks = blinks * envelope

        rig = FaceRig(portrait, options.rig)
        with self.video_writer(request, portrait.width, portrait.height, options.encoder) as writer:
            for i in range(frames):
                writer.write(rig.frame(float(mouth.openness[i]), float(mouth.spread[i]), float(blinks[i]), drift[i]))
        log.debug("face %d of %d, mouth from %s", portrait.face_index + 1, portrait.face_count, mouth.source)
        return RenderResult(frames=frames, width=portrait.width, height=portrait.height, seconds=frames / fps)
