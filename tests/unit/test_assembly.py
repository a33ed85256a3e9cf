"""Segments of a streamed reply: MPEG-TS remux and the final MP4 assembled without seams."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from contracts.audio import pad_to_frames
from workers.animation.encoder import VideoWriter
from workers.animation.segments import SegmentMedia, assemble, to_transport_stream

pytestmark = pytest.mark.unit

RATE, FPS = 24_000, 25


def segment(path: Path, seconds: float, shade: int) -> SegmentMedia:
    t = np.arange(int(seconds * RATE)) / RATE
    speech = pad_to_frames((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, FPS)
    with VideoWriter(path, 64, 48, FPS, speech, RATE) as writer:
        for _ in range(writer.frames_total):
            writer.write(np.full((48, 64, 3), shade, dtype=np.uint8))
    return SegmentMedia(video=path, speech=speech, sample_rate=RATE)


def video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def audio_samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])


def test_pad_to_frames_makes_whole_frames() -> None:
    padded = pad_to_frames(np.ones(1000, dtype=np.float32), RATE, FPS)
    assert len(padded) == 1920 and padded[:1000].all() and not padded[1000:].any()
    assert len(pad_to_frames(np.ones(960, dtype=np.float32), RATE, FPS)) == 960
    assert len(pad_to_frames(np.ones(100, dtype=np.float32), 44_100, 30)) == 1470
    assert len(pad_to_frames(np.zeros(0, dtype=np.float32), RATE, FPS)) == 960


def test_assembled_video_is_the_segments_end_to_end(tmp_path: Path) -> None:
    parts = [segment(tmp_path / f"s{i}.mp4", secs, shade)
             for i, (secs, shade) in enumerate([(1.23, 40), (0.77, 140), (2.01, 230)])]
    seconds = assemble(parts, tmp_path / "final.mp4")
    expected = sum(len(p.speech) for p in parts) / RATE
    assert abs(seconds - expected) < 1e-6

    frames = video_frames(tmp_path / "final.mp4")
    counts = [len(video_frames(p.video)) for p in parts]
    assert len(frames) == sum(counts) == round(expected * FPS)
    # The frames keep their order: each segment's shade, in sequence, with no frame lost at a seam.
    shades = [int(np.median(f)) for f in frames]
    bounds = np.cumsum([0] + counts)
    for (start, end), part_shade in zip(zip(bounds[:-1], bounds[1:]), (40, 140, 230)):
        assert all(abs(s - part_shade) <= 6 for s in shades[start:end])

    with av.open(str(tmp_path / "final.mp4")) as c:
        assert abs(c.duration / 1e6 - expected) < 0.1
    # The audio is encoded once, so no priming gap at the seams: the decoded track covers the whole speech.
    assert abs(len(audio_samples(tmp_path / "final.mp4")) - expected * RATE) < 2048


def test_transport_stream_copy_keeps_every_frame(tmp_path: Path) -> None:
    part = segment(tmp_path / "s.mp4", 1.5, 100)
    to_transport_stream(part.video, tmp_path / "s.ts")
    with av.open(str(tmp_path / "s.ts")) as c:
        assert c.format.name == "mpegts"
        assert {s.type for s in c.streams} == {"video", "audio"}
    assert len(video_frames(tmp_path / "s.ts")) == len(video_frames(part.video))
    assert not (tmp_path / "s.ts.part").exists()


def test_assemble_rejects_nothing_and_mixed_rates(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        assemble([], tmp_path / "x.mp4")
    part = segment(tmp_path / "a.mp4", 0.5, 10)
    other = SegmentMedia(video=part.video, speech=part.speech, sample_rate=16_000)
    with pytest.raises(ValueError):
        assemble([part, other], tmp_path / "x.mp4")
