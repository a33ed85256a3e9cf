"""Helpers that look at produced media the way a viewer would: ffprobe, frames, mouth motion."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Probe:
    video_codec: str
    audio_codec: str
    duration: float
    width: int
    height: int


def ffprobe(path: Path) -> Probe:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    return Probe(video["codec_name"], audio["codec_name"], float(info["format"]["duration"]),
                 int(video["width"]), int(video["height"]))


def moov_before_mdat(path: Path) -> bool:
    head = path.read_bytes()[: 1 << 20]
    moov, mdat = head.find(b"moov"), head.find(b"mdat")
    return moov != -1 and (mdat == -1 or moov < mdat)


def audio_track(path: Path, rate: int = 16_000) -> np.ndarray:
    from workers.audio import decode_audio

    return decode_audio(path, rate)


def gray_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray").astype(np.float32)
                         for f in container.decode(video=0)])


def mouth_box(portrait: bytes, width: int, height: int) -> tuple[int, int, int, int]:
    """Box around the mouth and chin, in the video's pixel coordinates."""
    import cv2
    import dlib

    from workers.animation.prepare import landmark_model_path

    image = cv2.imdecode(np.frombuffer(portrait, np.uint8), cv2.IMREAD_COLOR)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    faces = dlib.get_frontal_face_detector()(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 1)
    face = max(faces, key=lambda r: r.area())
    shape = dlib.shape_predictor(str(landmark_model_path()))(image, face)
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(48, 68)])
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    pad = int((x1 - x0) * 0.4)
    return max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + 2 * pad)


def mouth_motion(video: Path, portrait: bytes, fps: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: mean absolute change of the mouth box since the previous frame, and audio RMS."""
    probe = ffprobe(video)
    frames = gray_frames(video)
    x0, y0, x1, y1 = mouth_box(portrait, probe.width, probe.height)
    mouth = frames[:, y0:y1, x0:x1]
    motion = np.concatenate([[0.0], np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2))])
    audio = audio_track(video)
    hop = 16_000 // fps
    rms = np.array([np.sqrt(np.mean(audio[i * hop:(i + 1) * hop] ** 2) + 1e-12) for i in range(len(frames))])
    return motion, rms


def silent_runs(rms: np.ndarray, threshold: float, min_frames: int) -> list[range]:
    quiet = rms < threshold
    runs, start = [], None
    for i, q in enumerate(list(quiet) + [False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_frames:
                runs.append(range(start, i))
            start = None
    return runs


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def word_overlap(reference: str, heard: str) -> float:
    """Share of the reference's words that were heard (as a multiset)."""
    ref, got = words(reference), words(heard)
    if not ref:
        return 0.0
    pool = list(got)
    found = 0
    for w in ref:
        if w in pool:
            pool.remove(w)
            found += 1
    return found / len(ref)
