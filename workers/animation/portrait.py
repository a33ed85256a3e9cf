"""Portrait preparation: decode the upload at render size, find every face and its 68 landmarks.

Decoding goes through Pillow, which reads every format the coordinator admits:

* the image is scaled to the render size while it is decoded where the format
  allows (JPEG decodes at 1/2, 1/4 or 1/8 scale directly), then reduced by an
  integer factor and resampled with area averaging, so a 40-megapixel photo
  never exists at full size as a colour array;
* the EXIF orientation is applied (all eight of them);
* any colour mode becomes BGR uint8: grayscale, palette, CMYK, 16-bit and float
  images are converted, and transparency is composited over white.

The render size is the photo's own size, scaled down to fit ``max_side`` on the
longest side and ``MAX_SHORT_SIDE`` (1080p) on the shortest, with even sides (H.264
needs them). ``analyse_portrait`` then finds the faces (``workers.animation.faces``);
``select_face`` picks one and checks it. ``workers.animation.portrait_cache``
caches the analysis per portrait.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from contracts.errors import PermanentError
from workers.animation.faces import FaceBox, FaceChecks, FaceModels, check_face, find_faces

__all__ = [
    "FaceBox", "FaceChecks", "FaceModels", "PortraitAnalysis", "PreparedPortrait", "analyse_portrait",
    "decode_image", "prepare_portrait", "render_size", "select_face",
]

# The shorter side of a video is at most this (1080p); the longer one at most ``max_side``.
MAX_SHORT_SIDE = 1080
# Images whose shorter side is below this cannot hold a usable face.
MIN_SIDE = 32
# Pillow's transpose for each EXIF orientation (tag 0x0112) other than 1.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112
_SWAPS = frozenset({5, 6, 7, 8})  # orientations that swap width and height
# Modes that Pillow's integer-factor ``reduce`` takes; others are resampled after conversion.
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})


@dataclass(frozen=True)
class PortraitAnalysis:
    """A decoded portrait at render size and every face found in it.

    ``image`` is BGR uint8 with even width and height; ``boxes`` are sorted largest
    first and ``landmarks`` is float32 ``(faces, 68, 2)`` in the same order.
    """

    image: np.ndarray
    boxes: tuple[FaceBox, ...]
    landmarks: np.ndarray

    @property
    def faces(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class PreparedPortrait:
    """A decoded portrait ready to animate: the image and the one face to move.

    ``image`` is BGR uint8 with even width and height (H.264 needs them);
    ``landmarks`` are dlib's 68 points as float32 ``(68, 2)`` (x, y) in its pixels;
    ``face_index`` is the face's place among ``face_count`` faces, largest first.
    """

    image: np.ndarray
    landmarks: np.ndarray
    box: FaceBox
    face_index: int = 0
    face_count: int = 1
    all_boxes: tuple[FaceBox, ...] = field(default=(), repr=False)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def render_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The video size for a photo of ``width`` x ``height``: scaled down to fit, both sides even."""
    scale = min(1.0, max_side / max(width, height), MAX_SHORT_SIDE / min(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def decode_image(data: bytes, max_side: int, max_pixels: int | None = None) -> np.ndarray:
    """Decode image bytes to upright BGR uint8 at render size.

    Raises ``PermanentError`` with code ``bad_image`` for bytes that are no
    readable image (or one too small to hold a face) and ``image_too_large``
    above ``max_pixels``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if max_pixels is not None and image.width * image.height > max_pixels:
                    raise PermanentError(
                        f"the portrait has {image.width}x{image.height} pixels; the limit is {max_pixels}",
                        code="image_too_large",
                    )
                orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                upright = (image.height, image.width) if orientation in _SWAPS else (image.width, image.height)
                target = render_size(*upright, max_side)
                pixels = _decode_scaled(image, max_side)
    except PermanentError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, TypeError, KeyError,
            Image.DecompressionBombError) as e:
        raise PermanentError("the portrait is not an image that can be decoded", code="bad_image") from e
    if orientation in _ORIENTATION:
        pixels = pixels.transpose(_ORIENTATION[orientation])
    bgr = _to_bgr(pixels)
    height, width = bgr.shape[:2]
    if min(upright) < MIN_SIDE:
        raise PermanentError(f"the portrait is too small ({upright[0]}x{upright[1]} pixels)", code="bad_image")
    if target != (width, height):
        bgr = cv2.resize(bgr, target, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr)


def _decode_scaled(image: Image.Image, max_side: int) -> Image.Image:
    """Decode ``image``, at a reduced size where that is cheap, no smaller than the render size."""
    target = render_size(image.width, image.height, max_side)  # orientation does not change the scale
    scale = target[0] / image.width
    if image.format == "JPEG" and scale < 0.5:
        image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    image.load()
    factor = int(min(image.width / max(target[0], 1), image.height / max(target[1], 1)))
    if factor >= 2 and image.mode in _REDUCIBLE:
        return image.reduce(factor)
    return image.copy()


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as BGR uint8; transparency over white, deep images scaled to 8 bits."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image).astype(np.float32)
        top = float(values.max()) if values.size else 0.0
        full = 65535.0 if (mode.startswith("I;16") or top > 255.0) else (1.0 if mode == "F" and top <= 1.0 else 255.0)
        gray = np.clip(values * (255.0 / full) + 0.5, 0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = np.clip(rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    else:
        rgb = np.asarray(image if mode == "RGB" else image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def analyse_portrait(data: bytes, max_side: int, models: FaceModels, max_pixels: int | None = None
                     ) -> PortraitAnalysis:
    """Decode ``data`` at render size and find every face with its landmarks (none is not an error here)."""
    image = decode_image(data, max_side, max_pixels)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    boxes = tuple(find_faces(rgb, models))
    marks = np.array([models.landmarks(rgb, box) for box in boxes], np.float32).reshape(len(boxes), 68, 2)
    return PortraitAnalysis(image=image, boxes=boxes, landmarks=marks)


def select_face(analysis: PortraitAnalysis, face_index: int, checks: FaceChecks) -> PreparedPortrait:
    """The face ``face_index`` (0 is the largest) of an analysed portrait, checked with ``checks``.

    Raises ``PermanentError``: ``no_face`` when there is no such face (the message
    says how many there are), ``face_too_small`` or ``face_not_frontal``.
    """
    count = analysis.faces
    if count == 0:
        raise PermanentError("no face was found in the photo; use a clear, front-facing portrait", code="no_face")
    if not 0 <= face_index < count:
        found = "1 face" if count == 1 else f"{count} faces"
        raise PermanentError(
            f"face {face_index} was asked for, but the photo has {found} (choose 0 to {count - 1}, "
            "largest first)", code="no_face",
        )
    box, marks = analysis.boxes[face_index], analysis.landmarks[face_index]
    check_face(marks, box, checks)
    return PreparedPortrait(image=analysis.image, landmarks=marks.copy(), box=box, face_index=face_index,
                            face_count=count, all_boxes=analysis.boxes)


def prepare_portrait(data: bytes, max_side: int, models: FaceModels, face_index: int = 0,
                     checks: FaceChecks = FaceChecks()) -> PreparedPortrait:
    """Decode, scale, analyse and pick a face without any cache (``PortraitPreparer`` caches)."""
    return select_face(analyse_portrait(data, max_side, models), face_index, checks)
