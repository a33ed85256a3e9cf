"""The encoder pool: videos encoded in other processes from face regions passed through shared memory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from contracts.errors import StageError, TransientError
from workers.animation.encoder import VideoWriter
from workers.animation.encoder_pool import EncoderPool, EncodeSpec, default_processes

pytestmark = pytest.mark.unit
RATE, FPS = 24000, 25
BOX = (151, 109, 361, 360)  # left, top, right, bottom: odd edges on purpose (chroma blocks are 2x2)
REGION = (251, 210, 3)


@pytest.fixture(scope="module")
def pool():
    encoders = EncoderPool(2)
    yield encoders
    encoders.close()


def regions(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, *REGION), dtype=np.uint8)


def spec(path: Path, image: np.ndarray, frames: int) -> EncodeSpec:
    return EncodeSpec(output=str(path), image=image, box=BOX, fps=FPS, audio=np.zeros(frames * RATE // FPS, np.float32),
                      sample_rate=RATE, crf=0, preset="ultrafast")


def feed(handle, frames: np.ndarray, timeout: float = 30.0) -> None:
    """Write every frame as the ring frees room, as the engine's drain does."""
    sent, deadline = 0, time.monotonic() + timeout
    while sent < len(frames):
        room = min(len(frames) - sent, handle.encoded + handle.ring.frames - sent)
        if room > 0:
            handle.write(sent, frames[sent:sent + room])
            sent += room
        else:
            assert time.monotonic() < deadline, "the encoder made no room"
            time.sleep(0.001)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_the_pool_has_one_process_per_core_by_default():
    assert default_processes() == len(os.sched_getaffinity(0))


def test_concurrent_videos_equal_what_one_writer_makes_of_the_same_frames(pool, portrait, tmp_path: Path):
    count = 20
    before = set(os.listdir("/dev/shm"))
    inputs = [regions(count, seed) for seed in range(3)]
    handles = [pool.open(spec(tmp_path / f"v{i}.mp4", portrait, count), REGION, count, frames_ahead=6)
               for i in range(3)]
    assert sorted(h.process for h in handles) == [0, 0, 1] or sorted(h.process for h in handles) == [0, 1, 1]
    for handle, frames in zip(handles, inputs):  # interleaved would be the same; the rings are small
        feed(handle, frames)
    results = [h.result.result(30) for h in handles]
    assert all(r.frames == count and r.first_encoded_at > 0 for r in results)
    # The same whole frames, converted whole, through one VideoWriter here (x264 on one thread is
    # deterministic): the pool's region-only colour conversion gives exactly the whole frame's.
    left, top, right, bottom = BOX
    for i, frames in enumerate(inputs):
        reference = tmp_path / f"ref{i}.mp4"
        with VideoWriter(reference, portrait.shape[1], portrait.shape[0], FPS, np.zeros(count * RATE // FPS),
                         RATE, crf=0, preset="ultrafast", threads=1) as writer:
            for region in frames:
                frame = portrait.copy()
                frame[top:bottom, left:right] = region
                writer.write_i420(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420))
        ours, theirs = decoded(tmp_path / f"v{i}.mp4"), decoded(reference)
        assert len(ours) == count and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    assert pool.load() == [0, 0]
    assert set(os.listdir("/dev/shm")) <= before  # every ring was unlinked


def test_the_ring_refuses_frames_the_encoder_has_not_made_room_for(pool, portrait, tmp_path: Path):
    handle = pool.open(spec(tmp_path / "full.mp4", portrait, 10), REGION, 10, frames_ahead=4)
    with pytest.raises(ValueError, match="ring is full"):
        handle.write(0, regions(5, 1))
    with pytest.raises(ValueError, match="in order"):
        handle.write(2, regions(1, 1))
    handle.abort()
    with pytest.raises(TransientError):
        handle.result.result(5)
    time.sleep(0.5)
    assert not (tmp_path / "full.mp4").exists()


def test_a_failing_video_fails_alone(pool, portrait, tmp_path: Path):
    bad = pool.open(spec(tmp_path / "missing-folder" / "x.mp4", portrait, 5), REGION, 5, frames_ahead=5)
    good = pool.open(spec(tmp_path / "good.mp4", portrait, 5), REGION, 5, frames_ahead=5)
    feed(bad, regions(5, 2))  # the muxer opens the file at the first frame
    feed(good, regions(5, 2))
    with pytest.raises(StageError):
        bad.result.result(10)
    assert good.result.result(10).frames == 5


def test_a_dead_encoder_process_fails_its_videos_and_is_replaced(portrait, tmp_path: Path):
    encoders = EncoderPool(1)
    try:
        handle = encoders.open(spec(tmp_path / "a.mp4", portrait, 50), REGION, 50, frames_ahead=4)
        dead = encoders._procs[0]
        dead.kill()
        with pytest.raises(TransientError, match="died"):
            handle.result.result(10)
        assert encoders._procs[0] is not dead  # replaced before its videos were failed
        again = encoders.open(spec(tmp_path / "b.mp4", portrait, 3), REGION, 3, frames_ahead=3)
        feed(again, regions(3, 3))
        assert again.result.result(20).frames == 3
    finally:
        encoders.close()
