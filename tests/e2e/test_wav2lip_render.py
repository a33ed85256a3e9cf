"""The wav2lip backend end to end on the repo portrait, with tiny networks the test exports.

The networks are randomly initialised (``reference_net.TinyWav2Lip``), so the mouth
they paint is noise; what is checked is everything around them: loading each file
format through the backend, mel windows and crops, batching, the feathered
paste-back and the MP4 that comes out.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from contracts.errors import ModelMissingError
from contracts.settings import AnimationSettings, Settings, Wav2LipSettings
from workers.animation.backends.wav2lip import Wav2LipAnimator, Wav2LipOptions
from workers.animation.base import RenderRequest, registry
from workers.animation.encoder import EncoderOptions, VideoWriter
from workers.animation.portrait import decode_image
from workers.animation.wav2lip.face import CropOptions, crop_box
from workers.animation.wav2lip.reference_net import TinyWav2Lip, export_onnx, export_program, export_torchscript

pytestmark = pytest.mark.e2e

RATE = 24000
SECONDS = 2.2
FPS = 25


def speech_like(seconds: float, seed: int = 3) -> np.ndarray:
    """Syllable-like voiced sound with pauses (a stand-in for speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    syllables = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 1.5
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.4 * syllables * (voiced + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


def still(image: np.ndarray, path: Path, i420: bool = False) -> np.ndarray:
    """``image`` after a lossless H.264 round trip, as one frame.

    ``i420``: converted to YUV by OpenCV, as the pooled pipeline's encoders do (FFmpeg's
    converter filters chroma across 2x2 blocks and gives slightly other colours at edges).
    """
    with VideoWriter(path, image.shape[1], image.shape[0], FPS, np.zeros(RATE // FPS, np.float32), RATE,
                     crf=0) as writer:
        if i420:
            writer.write_i420(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420))
        else:
            writer.write(image)
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def settings_for(model_dir: Path, model: str, pipeline: str = "auto") -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, model_dir=model_dir, data_dir=model_dir / "data",
        animation=AnimationSettings(backend="wav2lip", batch_size=8,
                                    wav2lip=Wav2LipSettings(model=model, device="cpu", pipeline=pipeline,
                                                            encoder_processes=2)),
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    (folder / "wav2lip").mkdir()
    torch.manual_seed(0)
    net = TinyWav2Lip(96).eval()
    export_torchscript(net, folder / "wav2lip" / "tiny.pt", 96)
    export_onnx(net, folder / "wav2lip" / "tiny.onnx", 96)
    export_program(net, folder / "wav2lip" / "tiny.pt2", 96)
    return folder


def test_worker_start_check_names_what_is_missing(tmp_path: Path):
    backend = registry.create("wav2lip", settings_for(tmp_path, "wav2lip"))
    with pytest.raises(ModelMissingError, match="convert"):
        backend.check()


@pytest.mark.parametrize("model, pipeline", [
    ("wav2lip/tiny.pt", "threaded"), ("wav2lip/tiny.onnx", "threaded"),
    ("wav2lip/tiny.pt2", "pooled"), ("wav2lip/tiny.pt", "pooled"),
])
def test_renders_an_mp4_with_the_lower_face_regenerated_and_feathered(
    model_dir: Path, portrait_bytes: bytes, tmp_path: Path, model: str, pipeline: str
):
    settings = settings_for(model_dir, model, pipeline)
    # Lossless H.264: compare pixels exactly.
    backend = Wav2LipAnimator(settings, Wav2LipOptions(encoder=EncoderOptions(crf=0)))
    backend.check()
    backend.load()
    try:
        audio = speech_like(SECONDS)
        output = tmp_path / "talk.mp4"
        result = backend.render(RenderRequest(portrait=portrait_bytes, audio=audio, sample_rate=RATE, output=output))
        assert backend.model is not None and backend.model.face_size == 96
        if pipeline == "threaded":
            assert backend.batcher is not None and backend.batcher.stats.max_batch == 8
        else:  # paste-back in torch, encoding in the pool, first frames in a small first batch
            assert backend.engine is not None and backend.engine.frames == round(SECONDS * FPS)
            assert backend.engine.batches > round(SECONDS * FPS) // 8
    finally:
        backend.unload()

    frames_expected = round(SECONDS * FPS)
    assert result.frames == frames_expected and result.seconds == pytest.approx(SECONDS, abs=0.5 / FPS)
    with av.open(str(output)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264" and container.streams.audio[0].codec_context.name == "aac"
        duration = float(container.duration) / av.time_base
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == frames_expected
    assert duration == pytest.approx(SECONDS, abs=0.1)

    # The portrait as the backend scaled it, without any landmark work, through the same lossless
    # encoder (its BGR -> YUV 4:2:0 -> BGR round trip is the only change it may show).
    portrait = still(decode_image(portrait_bytes, settings.animation.max_side), tmp_path / "still.mp4",
                     i420=pipeline == "pooled")
    assert frames[0].shape == portrait.shape and (result.width, result.height) == (portrait.shape[1], portrait.shape[0])

    # Where the paste-back may write: the lower part of the face box (from the backend's own landmarks).
    backend.load()
    try:
        box = crop_box(backend._prepare(RenderRequest(portrait_bytes, audio, RATE, output)).landmarks,
                       portrait.shape, CropOptions())
    finally:
        backend.unload()
    top = box.top + int(0.5 * box.height)
    outside = np.ones(portrait.shape[:2], bool)
    outside[max(0, top - 2):box.bottom + 2, max(0, box.left - 2):box.right + 2] = False  # 4:2:0 chroma blocks
    moving = np.zeros(portrait.shape[:2], bool)
    moving[top + 25:box.bottom - 20, box.left + 25:box.right - 25] = True

    diffs_inside = []
    for frame in frames[::5]:
        diff = np.abs(frame.astype(np.int16) - portrait.astype(np.int16)).max(axis=2)
        assert diff[outside].max() <= 1, "pixels outside the pasted region changed"
        diffs_inside.append(diff[moving].mean())
        # Feathered: going down the middle of the box, the change grows gradually from the middle row.
        column = diff[box.top:box.bottom, box.left + box.width // 3: box.right - box.width // 3].mean(axis=1)
        rise = np.diff(column[int(0.5 * box.height) - 4:])
        assert rise.max() < 0.35 * column.max(), "hard edge at the paste boundary"
    assert min(diffs_inside) > 10.0  # the network's output really is pasted in

    # Different mel windows give different mouths: frames are not all the same.
    lower = [f[moving].astype(np.int16) for f in frames]
    assert max(np.abs(lower[i] - lower[0]).mean() for i in range(1, len(lower))) > 0.1
