"""A quick face check for a portrait before a job is sent: OpenCV's Haar cascade for frontal faces.

The web page checks a portrait as soon as it is picked, so that a photo without a
face is refused next to the photo instead of minutes later by the animation stage.
The cascade is cheap (tens of milliseconds on a portrait scaled to ``DETECT_SIDE``)
and ships inside ``opencv-python-headless`` (``cv2.data.haarcascades``), the
``facecheck`` extra. It is a screen, not the verdict: the animation stage's dlib
detector and landmark checks still decide whether a face can be animated.

The image is read with Pillow (turned upright by its EXIF orientation, as a phone
photo is shown), in grey, scaled down, its histogram equalised. Faces come back in
pixels of the upright image, largest first. Too small a face (under the animation
stage's ``min_face_px``) is refused like the stage would refuse it.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from contracts.boxes import FaceBox
from contracts.settings import Settings
from coordinator.errors import ApiError

try:
    import cv2
except ImportError:  # the coordinator runs without it; the check then answers 501
    cv2 = None  # type: ignore[assignment]

CASCADE = "haarcascade_frontalface_default.xml"
# The detector runs on a copy whose longest side is at most this many pixels.
DETECT_SIDE = 640
# Faces smaller than this (in pixels of the scaled copy) are not looked for.
MIN_DETECT_PX = 24
MISSING = "the face check needs OpenCV: pip install 'talkfarm[facecheck]'"


@dataclass(frozen=True)
class FaceCheck:
    """The faces found in a portrait (largest first) and the size of the upright image."""

    width: int
    height: int
    faces: tuple[FaceBox, ...]


class FaceChecker:
    """Haar-cascade detection; one classifier per thread (a classifier is not safe to share)."""

    def __init__(self, min_face_px: int) -> None:
        self.min_face_px = min_face_px
        self._local = threading.local()

    @staticmethod
    def available() -> bool:
        return cv2 is not None

    def _classifier(self) -> Any:
        found = getattr(self._local, "classifier", None)
        if found is None:
            folder: str = cv2.data.haarcascades  # type: ignore[attr-defined]  # not in OpenCV's stubs
            found = cv2.CascadeClassifier(folder + CASCADE)
            if found.empty():
                raise RuntimeError(f"OpenCV's {CASCADE} could not be loaded from {folder}")
            self._local.classifier = found
        return found

    def find(self, data: bytes) -> FaceCheck:
        """The faces in the image bytes (already checked by ``admission.check_image``)."""
        if cv2 is None:
            raise ApiError(501, "facecheck_unavailable", MISSING)
        try:
            with Image.open(io.BytesIO(data)) as image:
                upright = ImageOps.exif_transpose(image).convert("L")
        except (OSError, ValueError, SyntaxError) as e:  # decoded once already; a broken EXIF block lands here
            raise ApiError(415, "bad_image", "the portrait is not an image that can be decoded") from e
        width, height = upright.size
        scale = min(1.0, DETECT_SIDE / max(width, height))
        if scale < 1.0:
            upright = upright.resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                     Image.Resampling.BILINEAR)
        grey = cv2.equalizeHist(np.asarray(upright, dtype=np.uint8))
        found = self._classifier().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                                    minSize=(MIN_DETECT_PX, MIN_DETECT_PX))
        boxes = [FaceBox(*(int(round(v / scale)) for v in (x, y, x + w, y + h))) for x, y, w, h in found]
        boxes.sort(key=lambda b: b.area, reverse=True)
        return FaceCheck(width, height, tuple(boxes))

    def check(self, data: bytes) -> FaceCheck:
        """Like ``find``, but a portrait without a usable face is a 422 with a code a client can show."""
        result = self.find(data)
        if not result.faces:
            raise ApiError(422, "no_face", "no face was found in the photo; use a photo of one face looking at "
                                           "the camera, in good light")
        largest = result.faces[0]
        if min(largest.width, largest.height) < self.min_face_px:
            raise ApiError(422, "face_too_small",
                           f"the face is {largest.width}x{largest.height} pixels; it needs to be at least "
                           f"{self.min_face_px} pixels across: use a closer or larger photo")
        return result


def face_checker(settings: Settings) -> FaceChecker:
    """The process's checker for these settings (its classifiers are loaded once per thread)."""
    return _checker(settings.animation.min_face_px)


@lru_cache(maxsize=4)
def _checker(min_face_px: int) -> FaceChecker:
    return FaceChecker(min_face_px)
