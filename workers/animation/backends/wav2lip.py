"""Neural lip sync with a network of the Wav2Lip contract that the operator supplies (GPU when present).

The speech becomes Wav2Lip's mel spectrogram and one 16-step window per video
frame; the portrait's face (found by the shared portrait preparation) becomes a
crop of the network's size; the network regenerates the crop's lower face, which
is pasted back through a feathered mask and encoded with the speech (H.264 + AAC).

Two pipelines (``animation.wav2lip.pipeline``) do that with many renders at once
(Celery's ``--pool threads``):

* **pooled** (a torch network on CUDA, by default): one ``RenderEngine`` per process
  feeds the GPU from every render (first frames of a new render first), pastes back
  on the GPU and encodes in a pool of processes, one per core
  (``workers.animation.wav2lip.engine``);
* **threaded** (the CPU path, and ONNX): render threads share one ``FrameBatcher``
  for the network and paste back and encode themselves.

The network file (torch.export, TorchScript or ONNX, ``animation.wav2lip.model`` under
the model folder) is checked before the worker forks and loaded, with one test
forward pass (and, compiled, one per batch shape), in ``_load``; see
``workers.animation.wav2lip.runner``.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import AnimationSettings, Settings
from workers.animation.base import AnimationBackend, AnimationCapabilities, RenderRequest, RenderResult, registry
from workers.animation.encoder import EncoderOptions, frame_count
from workers.animation.prepare import INSTALL_HINT, landmark_model_path

if TYPE_CHECKING:
    from workers.animation.encoder_pool import EncoderPool
    from workers.animation.portrait_cache import PortraitPreparer
    from workers.animation.wav2lip.batcher import FrameBatcher
    from workers.animation.wav2lip.engine import EngineOptions, RenderEngine
    from workers.animation.wav2lip.face import CropOptions
    from workers.animation.wav2lip.runner import LipSyncModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wav2LipOptions:
    """Knobs of the wav2lip renderer that are not deployment settings."""

    crop: CropOptions | None = None  # None: ``CropOptions()``
    chunk_timeout_s: float = 120.0  # the longest wait for one chunk of frames from the batcher
    encoder: EncoderOptions = EncoderOptions()


@dataclass(frozen=True)
class _Face:
    """What the renderer needs of the prepared portrait: the scaled BGR image and its 68 landmarks."""

    image: np.ndarray
    landmarks: np.ndarray


@registry.register("wav2lip")
class Wav2LipAnimator(AnimationBackend):
    """Talking head from one photo with a Wav2Lip network, frames of all renders batched together."""

    version = "1"
    capabilities = AnimationCapabilities(batching=True, gpu=True)

    def __init__(self, settings: Settings, options: Wav2LipOptions | None = None) -> None:
        super().__init__(settings)
        self.options = options or Wav2LipOptions()
        self._preparer: PortraitPreparer | None = None
        self._model: LipSyncModel | None = None
        self._batcher: FrameBatcher | None = None
        self._engine: RenderEngine | None = None
        self._encoders: EncoderPool | None = None

    @property
    def model(self) -> LipSyncModel | None:
        return self._model

    @property
    def batcher(self) -> FrameBatcher | None:
        return self._batcher

    @property
    def engine(self) -> RenderEngine | None:
        """The pooled pipeline's engine (None on the threaded pipeline)."""
        return self._engine

    def check(self) -> None:
        """Raise ``ModelMissingError`` when the face models, the network file or its runtime is missing."""
        from workers.animation.wav2lip.runner import check_model_file, resolve_model_path

        for module in ("cv2", "dlib"):
            if importlib.util.find_spec(module) is None:
                raise ModelMissingError(f"the wav2lip animator needs {module}; {INSTALL_HINT}")
        landmark_model_path(self.settings.model_dir)
        check_model_file(resolve_model_path(self.settings.model_dir, self.settings.animation.wav2lip.model))

    def _load(self) -> None:
        try:
            from workers.animation.faces import FaceModels
            from workers.animation.portrait_cache import PortraitPreparer
            from workers.animation.wav2lip.runner import open_model, resolve_model_path
        except ImportError as e:
            raise ModelMissingError(f"the wav2lip animator needs OpenCV and dlib ({e}); {INSTALL_HINT}") from e
        animation = self.settings.animation
        config = animation.wav2lip
        path = resolve_model_path(self.settings.model_dir, config.model)
        started = time.perf_counter()
        faces = FaceModels(landmark_model_path(self.settings.model_dir))
        preparer = PortraitPreparer.from_settings(self.settings, faces)
        pooled = self._pooled(path.suffix.lower())
        compile_mode = config.compile if pooled else "off"  # the threaded batches have any size
        model = open_model(path, config.device, config.face_size, config.half, config.onnx_threads,
                           compile=compile_mode, channels_last=config.channels_last,
                           buckets=(config.first_batch, animation.batch_size))
        self._preparer, self._model = preparer, model
        if pooled:
            self._engine, self._encoders = self._start_engine(model)
        else:
            from workers.animation.wav2lip.batcher import FrameBatcher

            self._batcher = FrameBatcher(model.infer, animation.batch_size, config.max_wait_ms / 1000.0)
        log.info("wav2lip ready in %.2f s: %s on %s, %s pipeline, batches of %d", time.perf_counter() - started,
                 path.name, model.device, "pooled" if pooled else "threaded", animation.batch_size)

    def _pooled(self, suffix: str) -> bool:
        """Whether this process renders through the pooled pipeline (see ``Wav2LipSettings.pipeline``)."""
        from workers.animation.wav2lip.runner import ONNX_SUFFIXES

        config = self.settings.animation.wav2lip
        if config.pipeline == "threaded":
            return False
        if config.pipeline == "auto":
            import torch

            on_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
            if not on_cuda or suffix in ONNX_SUFFIXES:
                return False
        if suffix in ONNX_SUFFIXES:
            raise PermanentError("the pooled wav2lip pipeline runs torch networks (.pt2, .pt), not ONNX",
                                 code="bad_settings")
        if multiprocessing.current_process().daemon:
            raise PermanentError(
                "the pooled wav2lip pipeline starts encoder processes, which a prefork pool child cannot: "
                "run the animation worker with --pool threads (or solo)", code="bad_settings")
        return True

    def _start_engine(self, model: LipSyncModel) -> tuple[RenderEngine, EncoderPool]:
        from workers.animation.encoder_pool import EncoderPool
        from workers.animation.wav2lip.engine import RenderEngine
        from workers.animation.wav2lip.runner import TorchModel

        assert isinstance(model, TorchModel)
        encoders = EncoderPool(self.settings.animation.wav2lip.encoder_processes)
        options = engine_options(self.settings.animation, self.options.encoder)
        return RenderEngine(model.network, model.face_size, encoders, options), encoders

    def _unload(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._encoders is not None:
            self._encoders.close()
        if self._batcher is not None:
            self._batcher.close()
        if self._model is not None:
            self._model.close()
        self._preparer = self._model = self._batcher = self._engine = self._encoders = None

    def _prepare(self, request: RenderRequest) -> _Face:
        """The one coupling to the shared, cached portrait preparation (decode, scale, face, landmarks)."""
        assert self._preparer is not None
        portrait = self._preparer.prepare(request.portrait, request.face_index, request.portrait_key)
        return _Face(image=portrait.image, landmarks=portrait.landmarks)

    def _render(self, request: RenderRequest) -> RenderResult:
        from contracts.audio import resample
        from workers.animation.wav2lip.face import CropOptions, crop_box
        from workers.animation.wav2lip.mel import WAV2LIP, SegmentWindows, mel_windows, melspectrogram
        from workers.animation.wav2lip.pipeline import lip_sync_frames

        if self._model is None or (self._batcher is None and self._engine is None):
            raise RuntimeError("the wav2lip animator is not loaded")
        audio = request.audio
        animation = self.settings.animation
        fps = animation.fps
        face = self._prepare(request)
        crop = self.options.crop or CropOptions()
        try:
            box = crop_box(face.landmarks, face.image.shape, crop)
        except ValueError as e:
            raise PermanentError(f"the face is too small to animate: {e}", code="face_too_small") from e
        frames = frame_count(len(audio), request.sample_rate, fps)
        height, width = face.image.shape[:2]
        if self._engine is not None:
            from workers.animation.wav2lip.face import feather_mask

            # The engine resamples and computes the first batch's windows before the render starts, the rest
            # meanwhile.
            lazy = SegmentWindows(audio, frames, fps, sample_rate=request.sample_rate)
            stats = self._engine.render(face.image, box, lazy, feather_mask(box, crop),
                                        audio, request.sample_rate, str(request.output), fps,
                                        stall_timeout=self.options.chunk_timeout_s)
            log.info("wav2lip: %d frames, first frame ready in %.0f ms, encoded in %.0f ms", frames,
                     stats.first_frame_s * 1000, stats.first_encoded_s * 1000)
            return RenderResult(frames=frames, width=width, height=height, seconds=frames / fps)

        assert self._batcher is not None
        windows = mel_windows(melspectrogram(resample(audio, request.sample_rate, WAV2LIP.sample_rate)), frames, fps)
        with self.video_writer(request, width, height, self.options.encoder) as writer:
            for frame in lip_sync_frames(
                face.image, box, windows, self._batcher, self._model.face_size,
                chunk=animation.batch_size, depth=animation.wav2lip.in_flight, options=crop,
                timeout=self.options.chunk_timeout_s,
            ):
                writer.write(frame)
        return RenderResult(frames=frames, width=width, height=height, seconds=frames / fps)


def engine_options(animation: AnimationSettings, encoder: EncoderOptions) -> EngineOptions:
    """The pooled pipeline's options from the animation settings and the backend's x264 options."""
    from workers.animation.wav2lip.engine import EngineOptions

    config = animation.wav2lip
    return EngineOptions(batch_size=animation.batch_size, first_batch=config.first_batch,
                         frames_ahead=config.frames_ahead, max_wait=config.max_wait_ms / 1000.0,
                         crf=encoder.crf, preset=encoder.preset, tune=encoder.tune,
                         mel_first_processes=config.mel_first_processes, mel_processes=config.mel_processes,
                         setup_slots=config.setup_slots)
