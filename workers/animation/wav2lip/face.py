"""Face crops in and out of the Wav2Lip network: the crop box, the 6-channel input, the paste-back.

Wav2Lip was trained on face-detector boxes from about the eyebrows to just below the
chin, squashed to S x S. The box here is drawn from dlib's 68 landmarks to match:
the landmarks' extent, widened a little at the sides, raised by a share of the face
height above the brows and lowered a little below the chin (Wav2Lip pads its boxes
by 10 px at the bottom so that the chin is inside).

The network regenerates the lower half of the crop. Only that part is pasted back,
through a mask that is 1 over the lower face and falls to exactly 0 along the crop's
edges and its middle row with a smoothstep ramp, so the pasted region has no hard edge
and every pixel outside it is the portrait's own.

Images are BGR uint8 (OpenCV's order, which the original Wav2Lip was trained on).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from contracts.boxes import FaceBox


@dataclass(frozen=True)
class CropOptions:
    """How the face box is drawn from the landmarks and how the regenerated part is blended."""

    side_margin: float = 0.06  # of the landmarks' width, on each side
    top_margin: float = 0.25  # of the brow-to-chin height, above the brows
    bottom_margin: float = 0.08  # of the brow-to-chin height, below the chin
    paste_top: float = 0.5  # the pasted region starts at this share of the crop height
    feather: float = 0.12  # width of the ramp, as a share of the crop's shorter side


# A face crop in pixels of the portrait: rows ``top:bottom``, columns ``left:right``. The project's one
# rectangle type, under the name this module's callers know.
CropBox = FaceBox


def crop_box(landmarks: np.ndarray, image_shape: tuple[int, ...], options: CropOptions = CropOptions()) -> CropBox:
    """The face box from dlib's 68 ``(x, y)`` landmarks, clipped to the image."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(points) != 68:
        raise ValueError(f"expected 68 landmarks, got {len(points)}")
    height, width = image_shape[:2]
    brow = float(points[17:27, 1].min())
    chin = float(points[:, 1].max())
    face_height = max(chin - brow, 1.0)
    x0, x1 = float(points[:, 0].min()), float(points[:, 0].max())
    margin = options.side_margin * (x1 - x0)
    box = CropBox(
        left=max(0, int(np.floor(x0 - margin))),
        top=max(0, int(np.floor(brow - options.top_margin * face_height))),
        right=min(width, int(np.ceil(x1 + margin))),
        bottom=min(height, int(np.ceil(chin + options.bottom_margin * face_height))),
    )
    if box.width < 8 or box.height < 8:
        raise ValueError(f"the face box {box} is too small to crop")
    return box


def face_input(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The network's face input for one frame: float32 ``(6, size, size)`` in [0, 1].

    Channels 0-2 are the crop with its lower half zeroed (what the network must fill
    in), channels 3-5 the whole crop (the reference for identity and pose).
    """
    crop = image[box.top:box.bottom, box.left:box.right]
    shrinking = box.width > size or box.height > size
    resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    reference = resized.astype(np.float32) / 255.0
    masked = reference.copy()
    masked[size // 2:] = 0.0
    return np.ascontiguousarray(np.concatenate([masked, reference], axis=2).transpose(2, 0, 1))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def feather_mask(box: CropBox, options: CropOptions = CropOptions()) -> np.ndarray:
    """Blend weights over the crop, float32 ``(height, width, 1)``.

    1 over the lower face; 0 on the crop's border rows and columns and above
    ``paste_top``; a smoothstep ramp ``feather`` wide in between.
    """
    height, width = box.height, box.width
    ramp = max(2.0, options.feather * min(height, width))
    top = options.paste_top * height
    rows = np.arange(height, dtype=np.float64)
    cols = np.arange(width, dtype=np.float64)
    vertical = _smoothstep((rows - top) / ramp) * _smoothstep((height - 1 - rows) / ramp)
    horizontal = _smoothstep(cols / ramp) * _smoothstep((width - 1 - cols) / ramp)
    return (vertical[:, None] * horizontal[None, :]).astype(np.float32)[:, :, None]


def paste_back(image: np.ndarray, box: CropBox, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A new frame: ``image`` with the network's ``face`` (float ``(3, S, S)`` in [0, 1]) blended in.

    The face is resized to the box and mixed in by ``mask`` (from ``feather_mask``);
    where the mask is 0 the frame keeps the portrait's pixels exactly.
    """
    generated = np.clip(face, 0.0, 1.0).transpose(1, 2, 0) * np.float32(255.0)
    size = generated.shape[0]
    growing = box.width > size or box.height > size
    generated = cv2.resize(generated, (box.width, box.height),
                           interpolation=cv2.INTER_CUBIC if growing else cv2.INTER_AREA)
    frame = image.copy()
    region = frame[box.top:box.bottom, box.left:box.right]
    original = region.astype(np.float32)
    blended = original + mask * (generated - original)
    # Where the mask is 0 this gives back the original value exactly (x + 0.5, floored).
    region[...] = np.clip(blended + 0.5, 0.0, 255.0).astype(np.uint8)
    return frame
