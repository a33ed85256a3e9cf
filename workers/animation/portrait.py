"""Portrait preparation: decode the upload, scale it, find the face and its 68 landmarks.

Decoding goes through OpenCV, which applies the EXIF orientation of JPEG (and
the other formats it reads EXIF from) when decoding to colour. Images with an
alpha channel are composited over white. Faces are found with dlib's HOG
detector on a copy of at most ``DETECT_SIDE`` pixels, and the 68 landmarks are
predicted on the full prepared image.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np

from workers.errors import ModelMissingError, PermanentError

# The detector runs on a copy whose longest side is at most this many pixels.
DETECT_SIDE = 640
# Images whose shorter side is below this cannot hold a usable face.
MIN_SIDE = 32
_JPEG_MAGIC = b"\xff\xd8"


@dataclass(frozen=True)
class FaceBox:
    """The detected face rectangle, in pixels of the prepared image."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)


@dataclass(frozen=True)
class PreparedPortrait:
    """A decoded portrait ready to animate.

    ``image`` is BGR uint8 with even width and height (H.264 needs them);
    ``landmarks`` are dlib's 68 points as float32 ``(68, 2)`` (x, y) in its pixels.
    """

    image: np.ndarray
    landmarks: np.ndarray
    box: FaceBox

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


class FaceModels:
    """dlib's HOG face detector and the 68-point shape predictor, loaded once.

    dlib objects are not documented as thread-safe, so calls are serialised.
    """

    def __init__(self, predictor_path: Path) -> None:
        try:
            self.detector = dlib.get_frontal_face_detector()
            self.predictor = dlib.shape_predictor(str(predictor_path))
        except RuntimeError as e:
            raise ModelMissingError(
                f"cannot load the landmark model {predictor_path}: {e}; "
                "reinstall it with `pip install --force-reinstall talkfarm[animation]`"
            ) from e
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray, upsample: int) -> list[FaceBox]:
        """Face rectangles in ``rgb``, upsampling the image ``upsample`` times first."""
        with self._lock:
            found = self.detector(rgb, upsample)
        return [FaceBox(r.left(), r.top(), r.right(), r.bottom()) for r in found]

    def landmarks(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        """The 68 landmarks of the face in ``box`` as float32 ``(68, 2)``."""
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        with self._lock:
            shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def decode_image(data: bytes) -> np.ndarray:
    """Decode image bytes to BGR uint8, upright. Raises ``PermanentError(code="bad_image")``."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    image: np.ndarray | None = None
    try:
        if not data.startswith(_JPEG_MAGIC):
            # Only non-JPEG formats can carry alpha; look before the colour decode drops it.
            raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
            if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
                image = _over_white(raw)
        if image is None and buffer.size:
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # applies EXIF orientation
    except cv2.error as e:
        raise PermanentError(f"the portrait cannot be decoded: {e}", code="bad_image") from e
    if image is None:
        raise PermanentError("the portrait is not an image format that can be read", code="bad_image")
    if min(image.shape[:2]) < MIN_SIDE:
        raise PermanentError(
            f"the portrait is too small ({image.shape[1]}x{image.shape[0]} pixels)", code="bad_image"
        )
    return image


def fit_image(image: np.ndarray, max_side: int) -> np.ndarray:
    """Scale down so the longest side is at most ``max_side``; make both sides even."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(2, int(round(width * scale)) // 2 * 2), max(2, int(round(height * scale)) // 2 * 2))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # Already small enough: drop an odd last row or column rather than resample.
    return np.ascontiguousarray(image[: height // 2 * 2, : width // 2 * 2])


def find_face(rgb: np.ndarray, models: FaceModels) -> FaceBox | None:
    """The largest face in ``rgb``, detected on a copy of at most ``DETECT_SIDE`` pixels."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = rgb if scale == 1.0 else cv2.resize(
        rgb, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA
    )
    boxes = models.detect(small, 0)
    if not boxes and max(small.shape[:2]) <= DETECT_SIDE:
        boxes = models.detect(small, 1)  # small faces: HOG needs about 80 pixels
    if not boxes:
        return None
    best = max(boxes, key=lambda b: b.area)
    return FaceBox(*(int(round(v / scale)) for v in (best.left, best.top, best.right, best.bottom)))


def prepare_portrait(data: bytes, max_side: int, models: FaceModels) -> PreparedPortrait:
    """Decode, scale and analyse a portrait upload.

    Raises ``PermanentError`` with code ``bad_image`` when the bytes are no readable
    image and ``no_face`` when no face is found.
    """
    image = fit_image(decode_image(data), max_side)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    box = find_face(rgb, models)
    if box is None:
        raise PermanentError(
            "no face was found in the photo; use a clear, front-facing portrait", code="no_face"
        )
    return PreparedPortrait(image=image, landmarks=models.landmarks(rgb, box), box=box)


def _over_white(bgra: np.ndarray) -> np.ndarray:
    """Composite a BGRA image (8 or 16 bit) over a white background, as BGR uint8."""
    if bgra.dtype != np.uint8:
        top = float(np.iinfo(bgra.dtype).max) if np.issubdtype(bgra.dtype, np.integer) else 1.0
        bgra = cv2.convertScaleAbs(bgra, alpha=255.0 / top)
    alpha = bgra[:, :, 3:4].astype(np.float32) / 255.0
    colour = bgra[:, :, :3].astype(np.float32)
    return np.clip(colour * alpha + 255.0 * (1.0 - alpha), 0, 255).astype(np.uint8)
