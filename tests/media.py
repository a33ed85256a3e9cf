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
    from contracts.audio import decode_audio

    return decode_audio(path, rate)


def gray_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray").astype(np.float32)
                         for f in container.decode(video=0)])


def keyframes(path: Path) -> np.ndarray:
    """Per frame: whether it is a keyframe. At a keyframe the encoder starts afresh, which changes every
    pixel a little (about 2.5 grey levels at CRF 20), so frame differences there are not motion."""
    with av.open(str(path)) as container:
        return np.array([f.key_frame for f in container.decode(video=0)], dtype=bool)


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


# --- Looking at a talking head the way a viewer would: landmarks re-detected on every frame ---

def bgr_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


class FaceTracker:
    """dlib's detector and 68-point predictor, run on every frame near where the face was."""

    def __init__(self) -> None:
        import dlib

        from workers.animation.prepare import landmark_model_path

        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(landmark_model_path()))
        self._rect = dlib.rectangle

    def landmarks(self, frame: np.ndarray, near: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
        """The largest face's 68 landmarks (float ``(68, 2)``), searched in ``near`` grown by half its size."""
        import cv2

        height, width = frame.shape[:2]
        x0, y0, x1, y1 = near if near is not None else (0, 0, width, height)
        pad_x, pad_y = (x1 - x0) // 2, (y1 - y0) // 2
        x0, y0 = max(0, x0 - pad_x), max(0, y0 - pad_y)
        x1, y1 = min(width, x1 + pad_x), min(height, y1 + pad_y)
        rgb = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_BGR2RGB)
        faces = self._detector(rgb, 1)  # upsampled once: faces down to about 40 pixels
        if not faces:
            return None
        face = max(faces, key=lambda r: r.area())
        shape = self._predictor(rgb, face)
        return np.array([(p.x + x0, p.y + y0) for p in shape.parts()], np.float64)

    def track(self, frames: list[np.ndarray], near: tuple[int, int, int, int]) -> list[np.ndarray | None]:
        return [self.landmarks(frame, near) for frame in frames]


def face_box(marks: np.ndarray) -> tuple[int, int, int, int]:
    (x0, y0), (x1, y1) = marks.min(axis=0), marks.max(axis=0)
    return int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))


def eye_distance(marks: np.ndarray) -> float:
    """Distance between the eye centres: a face size that does not change as the jaw moves."""
    return float(np.linalg.norm(marks[42:48].mean(axis=0) - marks[36:42].mean(axis=0)))


def inner_lip_gap(marks: np.ndarray) -> float:
    """Mean distance between the upper and lower inner lip (61-67, 62-66, 63-65), across the eye line."""
    axis = marks[42:48].mean(axis=0) - marks[36:42].mean(axis=0)
    down = np.array([-axis[1], axis[0]]) / max(float(np.linalg.norm(axis)), 1e-9)
    return float(np.mean([(marks[low] - marks[up]) @ down for up, low in ((61, 67), (62, 66), (63, 65))]))


def eye_aspect_ratio(marks: np.ndarray) -> float:
    """Eye opening over eye width, both eyes averaged (Soukupová and Čech's EAR)."""
    def one(e: np.ndarray) -> float:
        return float((np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3])))
    return 0.5 * (one(marks[36:42]) + one(marks[42:48]))


def count_dips(values: np.ndarray, below: float) -> int:
    """Runs of consecutive values under ``below`` (NaN counts as not under)."""
    under = np.nan_to_num(values, nan=np.inf) < below
    return int(np.sum(under[1:] & ~under[:-1]) + int(under[0])) if len(under) else 0


def loudness_envelope(audio: np.ndarray, rate: int, fps: int, frames: int) -> np.ndarray:
    """RMS of the audio over each video frame's 1/fps (frame i covers i/fps .. (i+1)/fps)."""
    hop = rate / fps
    return np.array([np.sqrt(np.mean(audio[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(frames)])


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two gray images (Gaussian window, sigma 1.5, the usual constants)."""
    import cv2

    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def mouth_and_jaw_mask(marks: np.ndarray, shape: tuple[int, ...], margin: float = 0.12) -> np.ndarray:
    """True over the mouth and jaw: the hull of the lower jaw line (2-14) and the lips, grown by
    ``margin`` of the face width and extended below the chin by the jaw's travel."""
    import cv2

    width = float(np.linalg.norm(marks[16] - marks[0]))
    chin_drop = marks[8] + (marks[8] - marks[33]) * 0.35
    points = np.vstack([marks[2:15], marks[48:68], marks[31:36], chin_drop[None]])
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    grow = max(1, int(round(margin * width)))
    return cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(bool)


def head_mask(marks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """True over the head: the landmark box grown by a quarter sideways and half its height upwards."""
    x0, y0, x1, y1 = face_box(marks)
    w, h = x1 - x0, y1 - y0
    mask = np.zeros(shape[:2], bool)
    mask[max(0, y0 - h // 2):min(shape[0], y1 + h // 4), max(0, x0 - w // 4):min(shape[1], x1 + w // 4)] = True
    return mask


def landscape_png() -> bytes:
    """Sky over a field, 400×300: a photo with no face anywhere."""
    import io

    from PIL import Image

    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:180] = np.linspace((120, 170, 250), (200, 225, 255), 180).astype(np.uint8)[:, None, :]
    pixels[180:] = (60, 140, 50)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()
