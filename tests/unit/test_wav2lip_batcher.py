"""The per-process frame batcher: frames of concurrent renders share forward passes, each gets its own back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.animation.wav2lip.batcher import FrameBatcher
from workers.animation.wav2lip.face import CropBox
from workers.animation.wav2lip.pipeline import lip_sync_frames
from workers.animation.wav2lip.reference_net import TinyWav2Lip, export_torchscript
from workers.animation.wav2lip.runner import open_model

pytestmark = pytest.mark.unit
SIZE = 8


def tagged(job: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk inputs whose mel value is job * 1000 + frame, so outputs say whose frame they are."""
    mel = np.zeros((frames, 1, 80, 16), np.float32)
    mel[:, 0, 0, 0] = job * 1000 + np.arange(frames)
    return mel, np.zeros((frames, 6, SIZE, SIZE), np.float32)


class Echo:
    """A stand-in network that returns each row's tag and records the batches it saw."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.batches: list[list[float]] = []

    def __call__(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.batches.append(mel[:, 0, 0, 0].tolist())
        out = np.zeros((len(mel), 3, SIZE, SIZE), np.float32)
        out[:, 0, 0, 0] = mel[:, 0, 0, 0]
        return out


def wait_running(future) -> None:
    """Until the batcher has taken the chunk into a forward pass."""
    for _ in range(500):
        if future.running() or future.done():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the batcher never took the chunk")


def tags(out: np.ndarray) -> list[float]:
    return out[:, 0, 0, 0].tolist()


def test_a_chunk_larger_than_a_batch_is_split_and_comes_back_whole_in_order():
    echo = Echo()
    batcher = FrameBatcher(echo, batch_size=8)
    try:
        out = batcher.submit(*tagged(1, 20)).result(5)
    finally:
        batcher.close()
    assert tags(out) == [1000 + i for i in range(20)]
    assert [len(b) for b in echo.batches] == [8, 8, 4]
    assert batcher.stats.batches == 3 and batcher.stats.frames == 20 and batcher.stats.max_batch == 8


def test_queued_chunks_of_two_jobs_are_packed_into_shared_batches():
    gate = threading.Event()
    echo = Echo(gate)
    batcher = FrameBatcher(echo, batch_size=8)
    try:
        first = batcher.submit(*tagged(9, 1))  # occupies the network while the rest queues up
        wait_running(first)
        a = [batcher.submit(*tagged(1, 3)), batcher.submit(*tagged(1, 3))]
        b = [batcher.submit(*tagged(2, 5))]
        gate.set()
        assert tags(first.result(5)) == [9000]
        assert tags(np.concatenate([f.result(5) for f in a])) == [1000, 1001, 1002, 1000, 1001, 1002]
        assert tags(b[0].result(5)) == [2000, 2001, 2002, 2003, 2004]
    finally:
        batcher.close()
    assert echo.batches[1] == [1000, 1001, 1002, 1000, 1001, 1002, 2000, 2001]  # one pass, both jobs
    assert echo.batches[2] == [2002, 2003, 2004]
    assert batcher.stats.shared_batches == 1


def test_a_failing_batch_fails_its_chunks_and_the_batcher_goes_on():
    calls = []

    def flaky(mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        calls.append(len(mel))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return np.zeros((len(mel), 3, SIZE, SIZE), np.float32)

    batcher = FrameBatcher(flaky, batch_size=4)
    try:
        failed = batcher.submit(*tagged(1, 6))  # split over two batches; the first fails
        with pytest.raises(RuntimeError, match="device lost"):
            failed.result(5)
        assert batcher.submit(*tagged(2, 3)).result(5).shape == (3, 3, SIZE, SIZE)
    finally:
        batcher.close()
    assert calls[-1] == 3  # the failed chunk's second half was dropped, not run


def test_cancelled_chunks_are_skipped_and_close_drains_the_queue():
    gate = threading.Event()
    echo = Echo(gate)
    batcher = FrameBatcher(echo, batch_size=4)
    running = batcher.submit(*tagged(1, 2))
    wait_running(running)
    cancelled = batcher.submit(*tagged(2, 2))
    kept = batcher.submit(*tagged(3, 2))
    wait_running(running)
    assert cancelled.cancel()
    gate.set()
    batcher.close()
    assert tags(kept.result(0)) == [3000, 3001]
    assert all(2000 not in batch for batch in echo.batches)
    with pytest.raises(RuntimeError):
        batcher.submit(*tagged(4, 1))


def test_max_wait_lets_a_part_full_batch_collect_frames_of_another_render():
    echo = Echo()
    batcher = FrameBatcher(echo, batch_size=8, max_wait=2.0)
    try:
        a = batcher.submit(*tagged(1, 3))
        b = batcher.submit(*tagged(2, 5))  # arrives while the batcher waits for a full batch
        assert tags(a.result(5)) == [1000, 1001, 1002] and len(b.result(5)) == 5
    finally:
        batcher.close()
    assert echo.batches == [[1000, 1001, 1002, 2000, 2001, 2002, 2003, 2004]]


class CountingBatcher(FrameBatcher):
    """Opens ``gate`` once ``expected`` chunks were submitted."""

    def __init__(self, *args, gate: threading.Event, expected: int, **kwargs) -> None:
        self.gate, self.expected, self.submitted = gate, expected, 0
        self._count_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def submit(self, mel, face):
        future = super().submit(mel, face)
        with self._count_lock:
            self.submitted += 1
            if self.submitted >= self.expected:
                self.gate.set()
        return future


def test_two_concurrent_renders_with_a_tiny_network_share_batches_and_get_their_own_frames(tmp_path: Path):
    torch.manual_seed(0)
    model = open_model(export_torchscript(TinyWav2Lip(32).eval(), tmp_path / "tiny.pt", 32), device="cpu")
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    box = CropBox(16, 10, 80, 74)
    windows = {job: rng.uniform(-4, 4, (13, 1, 80, 16)).astype(np.float32) for job in (1, 2)}

    # Each render alone, one frame per forward pass: what each must get back.
    alone = FrameBatcher(model.infer, batch_size=1)
    expected = {job: list(lip_sync_frames(image, box, w, alone, 32, chunk=1)) for job, w in windows.items()}
    alone.close()
    assert alone.stats.shared_batches == 0
    assert not np.array_equal(expected[1][0], expected[2][0])  # the two jobs' frames differ

    gate = threading.Event()

    def gated(mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        assert gate.wait(10)  # the first pass waits until both renders have queued chunks
        return model.infer(mel, face)

    shared = CountingBatcher(gated, batch_size=8, gate=gate, expected=4)

    def render(job: int) -> list[np.ndarray]:
        return list(lip_sync_frames(image, box, windows[job], shared, 32, chunk=5, depth=2, timeout=20))

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip((1, 2), pool.map(render, (1, 2))))
    shared.close()

    assert shared.stats.shared_batches >= 1
    assert shared.stats.frames == 26 and shared.stats.max_batch == 8
    for job in (1, 2):
        assert len(results[job]) == 13
        for got, want in zip(results[job], expected[job]):
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
