"""The pooled wav2lip engine on the CPU: the same frames as the threaded path, many renders at once."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from workers.animation.encoder import VideoWriter
from workers.animation.encoder_pool import EncoderPool
from workers.animation.wav2lip.engine import EngineOptions, RenderEngine
from workers.animation.wav2lip.face import CropBox, face_input, feather_mask, paste_back
from workers.animation.wav2lip.mel import SegmentWindows, mel_windows, melspectrogram
from workers.animation.wav2lip.network import NetworkOptions, optimize
from workers.animation.wav2lip.reference_net import TinyWav2Lip

pytestmark = pytest.mark.unit
SIZE, RATE, FPS = 32, 24000, 25
BOX = CropBox(173, 64, 278, 186)  # the portrait's face box (odd edges)


@pytest.fixture(scope="module")
def net() -> TinyWav2Lip:
    torch.manual_seed(0)
    return TinyWav2Lip(SIZE).eval()


@pytest.fixture(scope="module")
def engine(net: TinyWav2Lip):
    encoders = EncoderPool(2)
    prepared = optimize(torch.jit.trace(net, (torch.zeros(2, 1, 80, 16), torch.zeros(2, 6, SIZE, SIZE))),
                        NetworkOptions(device="cpu", compile="off"))
    engine = RenderEngine(prepared, SIZE, encoders,
                          EngineOptions(batch_size=16, first_batch=4, frames_ahead=8, crf=0, preset="ultrafast",
                                        mel_processes=1, mel_first_processes=0))  # the tests choose the paths
    yield engine
    engine.close()
    encoders.close()


def windows(frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-4, 4, (frames, 1, 80, 16)).astype(np.float32)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_concurrent_renders_give_the_threaded_paths_frames(engine: RenderEngine, net: TinyWav2Lip,
                                                           portrait: np.ndarray, tmp_path: Path):
    counts = [23, 9, 40]
    inputs = [windows(n, i) for i, n in enumerate(counts)]
    mask = feather_mask(BOX)
    results: dict[int, object] = {}

    def render(i: int) -> None:
        audio = np.zeros(counts[i] * RATE // FPS, np.float32)
        results[i] = engine.render(portrait, BOX, inputs[i], mask, audio, RATE, str(tmp_path / f"{i}.mp4"), FPS)

    threads = [threading.Thread(target=render, args=(i,)) for i in range(len(counts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3
    face = torch.from_numpy(face_input(portrait, BOX, SIZE))
    for i, count in enumerate(counts):
        stats = results[i]
        assert stats.frames == count  # type: ignore[attr-defined]
        assert 0 < stats.first_frame_s <= stats.seconds  # type: ignore[attr-defined]
        with torch.no_grad():
            generated = net(torch.from_numpy(inputs[i]), face.expand(count, -1, -1, -1)).numpy()
        frames = decoded(tmp_path / f"{i}.mp4")
        assert len(frames) == count
        # The threaded path's frames (numpy paste-back) through the same lossless encoder.
        reference = tmp_path / f"reference{i}.mp4"
        with VideoWriter(reference, portrait.shape[1], portrait.shape[0], FPS, np.zeros(count * RATE // FPS), RATE,
                         crf=0, preset="ultrafast", threads=1) as writer:
            for out in generated:
                writer.write_i420(cv2.cvtColor(paste_back(portrait, BOX, out, mask), cv2.COLOR_BGR2YUV_I420))
        for frame, expected in zip(frames, decoded(reference)):
            difference = np.abs(frame.astype(np.int16) - expected.astype(np.int16))
            # One level apart on a rare pixel (the paste-back tests) moves a few levels through YUV 4:2:0.
            assert difference.max() <= 4 and difference.mean() < 0.01
    assert engine.frames >= sum(counts) and engine.batches >= 1


def test_a_render_that_fails_in_the_encoder_raises_and_the_engine_goes_on(engine: RenderEngine,
                                                                          portrait: np.ndarray, tmp_path: Path):
    mask = feather_mask(BOX)
    with pytest.raises(Exception, match="encoding failed"):
        engine.render(portrait, BOX, windows(10, 7), mask, np.zeros(10 * RATE // FPS, np.float32), RATE,
                      str(tmp_path / "no-such-folder" / "x.mp4"), FPS)
    stats = engine.render(portrait, BOX, windows(6, 8), mask, np.zeros(6 * RATE // FPS, np.float32), RATE,
                          str(tmp_path / "ok.mp4"), FPS)
    assert stats.frames == 6 and len(decoded(tmp_path / "ok.mp4")) == 6


class _SlowWindows(SegmentWindows):
    """Lazy windows whose rest comes late, and whose not-yet-computed windows are NaN (never to be rendered)."""

    def __init__(self, *args: object, delay: float = 0.3) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.array[:] = np.nan
        self.delay = delay

    def compute(self, end: int) -> np.ndarray:
        if end > self.ready and self.ready:  # the rest, after the first batch: let the feeder run meanwhile
            time.sleep(self.delay)
        return super().compute(end)


@pytest.mark.parametrize("mel_processes, first_in_process", [(0, False), (1, False), (1, True)])
def test_lazy_windows_render_the_same_video_as_whole_windows(engine: RenderEngine, portrait: np.ndarray,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             mel_processes: int, first_in_process: bool):
    monkeypatch.setattr(engine, "options", replace(engine.options, mel_processes=mel_processes))
    if first_in_process:  # as the engine makes it for mel_first_processes=1
        first_pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        monkeypatch.setattr(engine, "_first_pool", first_pool)
    speech = (0.3 * np.random.default_rng(5).standard_normal(16_000 * 30 // FPS)).astype(np.float32)
    frames, mask = 30, feather_mask(BOX)
    audio = np.zeros(frames * RATE // FPS, np.float32)
    whole = mel_windows(melspectrogram(speech), frames, FPS)
    lazy = _SlowWindows(speech, frames, FPS) if mel_processes == 0 else SegmentWindows(speech, frames, FPS)
    stats = engine.render(portrait, BOX, lazy, mask, audio, RATE, str(tmp_path / "lazy.mp4"), FPS)
    engine.render(portrait, BOX, whole, mask, audio, RATE, str(tmp_path / "whole.mp4"), FPS)
    assert stats.frames == frames and lazy.ready == frames
    assert np.array_equal(lazy.array, whole)
    for got, expected in zip(decoded(tmp_path / "lazy.mp4"), decoded(tmp_path / "whole.mp4"), strict=True):
        difference = np.abs(got.astype(np.int16) - expected.astype(np.int16))
        assert difference.max() <= 4 and difference.mean() < 0.01  # batches of other sizes: float rounding
    if first_in_process:
        first_pool.shutdown()


def test_renders_of_one_portrait_share_one_upload(engine: RenderEngine, portrait: np.ndarray, tmp_path: Path):
    mask = feather_mask(BOX)
    audio = np.zeros(5 * RATE // FPS, np.float32)
    engine._setups.clear()
    for i in range(3):
        engine.render(portrait, BOX, windows(5, i), mask, audio, RATE, str(tmp_path / f"{i}.mp4"), FPS)
    assert len(engine._setups) == 1
    other = portrait.copy()
    other[BOX.top + 5, BOX.left + 5] ^= 1  # one pixel of the face region: another upload
    engine.render(other, BOX, windows(5, 9), mask, audio, RATE, str(tmp_path / "other.mp4"), FPS)
    outside = portrait.copy()
    outside[0, 0] ^= 1  # outside the face box: what is uploaded is the same
    engine.render(outside, BOX, windows(5, 9), mask, audio, RATE, str(tmp_path / "outside.mp4"), FPS)
    assert len(engine._setups) == 2
