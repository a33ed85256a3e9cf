"""VideoWriter: H.264 + AAC in an MP4 with faststart, video as long as the audio."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workers.animation.encoder import VideoWriter, as_mono, frame_count

pytestmark = pytest.mark.unit

FFPROBE = shutil.which("ffprobe")


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _write(path: Path, audio: np.ndarray, rate: int, fps: int = 25, size: tuple[int, int] = (96, 64)) -> int:
    width, height = size
    with VideoWriter(path, width, height, fps, audio, rate) as writer:
        for i in range(writer.frames_total):
            frame = np.zeros((height, width, 3), np.uint8)
            frame[:, : (i * 7) % width] = (40, 160, 220)
            writer.write(frame)
    return writer.frames_total


def _probe(path: Path) -> dict:
    assert FFPROBE is not None
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout
    return json.loads(out)


def _top_level_atoms(data: bytes) -> list[str]:
    atoms, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        atoms.append(kind)
        if size < 8:
            break
        offset += size
    return atoms


@pytest.mark.skipif(FFPROBE is None, reason="ffprobe is not installed")
@pytest.mark.parametrize("rate", [24000, 22050, 16001])
def test_mp4_is_h264_aac_faststart_and_as_long_as_the_audio(tmp_path: Path, rate: int) -> None:
    seconds = 2.37
    path = tmp_path / "out.mp4"
    frames = _write(path, _tone(seconds, rate), rate)
    assert frames == round(seconds * 25)

    info = _probe(path)
    codecs = {s["codec_type"]: s for s in info["streams"]}
    assert codecs["video"]["codec_name"] == "h264"
    assert codecs["video"]["pix_fmt"] == "yuv420p"
    assert int(codecs["video"]["nb_frames"]) == frames
    assert codecs["audio"]["codec_name"] == "aac"
    assert codecs["audio"]["channels"] == 1
    assert abs(float(codecs["video"]["duration"]) - seconds) <= 0.1
    assert abs(float(codecs["audio"]["duration"]) - seconds) <= 0.1
    assert abs(float(info["format"]["duration"]) - seconds) <= 0.1

    atoms = _top_level_atoms(path.read_bytes())
    assert "moov" in atoms and "mdat" in atoms
    assert atoms.index("moov") < atoms.index("mdat")


def test_frame_count_rounds_and_is_at_least_one() -> None:
    assert frame_count(24000, 24000, 25) == 25
    assert frame_count(24000 + 479, 24000, 25) == 25
    assert frame_count(24000 + 481, 24000, 25) == 26
    assert frame_count(0, 24000, 25) == 1
    with pytest.raises(ValueError):
        frame_count(100, 0, 25)


def test_as_mono_downmixes_clips_and_cleans() -> None:
    stereo = np.array([[0.5, 1.5], [np.nan, -0.2], [0.2, 0.4]], np.float32)
    mono = as_mono(stereo)
    assert mono.dtype == np.float32 and mono.shape == (3,)
    np.testing.assert_allclose(mono, [1.0, -0.1, 0.3], atol=1e-6)


def test_empty_audio_still_gives_one_frame(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    assert _write(path, np.zeros(0, np.float32), 24000) == 1
    assert path.stat().st_size > 0


def test_wrong_frames_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    with VideoWriter(path, 64, 48, 25, _tone(0.2, 24000), 24000) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros((48, 64), np.uint8))
        for _ in range(writer.frames_total):
            writer.write(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(ValueError):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert path.is_file()


def test_odd_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "odd.mp4", 63, 48, 25, _tone(0.2, 24000), 24000)


def test_short_video_or_error_removes_the_partial_file(tmp_path: Path) -> None:
    short = tmp_path / "short.mp4"
    with pytest.raises(ValueError):
        with VideoWriter(short, 64, 48, 25, _tone(1.0, 24000), 24000) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert not short.exists()

    failed = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(failed, 64, 48, 25, _tone(1.0, 24000), 24000) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("render failed")
    assert not failed.exists()
