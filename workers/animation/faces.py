"""Faces in a portrait: dlib's detector and 68-point landmarks, and whether a face can be animated.

Faces are found with dlib's HOG detector on a copy of at most ``DETECT_SIDE``
pixels (detections scoring under ``MIN_SCORE`` are dropped: a face-like badge is
no face) and sorted largest first; their 68 landmarks are predicted on the full
image. Whether a face is usable is decided from its detected box and its
landmarks (``check_face``): big enough (``min_face_px``), frontal enough and
plausibly fitted. The geometry is measured in the face's own frame (x along the eye line,
y down the face), so a tilted head is judged like an upright one:

* yaw, two ways: the nose tip's offset from the midpoint of the outer eye
  corners, in half the corner distance, and the asymmetry of the jaw on either
  side of the nose; a profile drives both towards ±1;
* visibility: the narrower eye at least ``min_eye_ratio`` of the wider one (a
  turned-away or covered eye is foreshortened or collapsed by the fit), the mouth
  centred under the nose;
* plausibility: brows above eyes above nose tip above mouth above chin, each at
  a share of the eye-to-chin height a human face has, and a face width in
  proportion. A fit over a hand, a mask or a half-hidden face breaks these.

Landmark numbering (0-based, dlib's 68-point scheme): jaw 0-16 (chin 8), brows
17-26, nose 27-35 (tip 30), eyes 36-41 and 42-47, outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np

from contracts.boxes import FaceBox
from contracts.errors import ModelMissingError, PermanentError

# The detector runs on a copy whose longest side is at most this many pixels.
DETECT_SIDE = 640
# At most this many faces get landmarks (largest first).
MAX_FACES = 16
# The HOG detector's score threshold (dlib's default is 0). Faces in photos score about 1 and
# more; face-like patterns (a badge, a pattern in the clothes) score near 0.
MIN_SCORE = 0.3


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
        """Face rectangles in ``rgb`` scoring at least ``MIN_SCORE``; the image is upsampled ``upsample`` times."""
        with self._lock:
            found, _, _ = self.detector.run(rgb, upsample, MIN_SCORE)
        return [FaceBox(r.left(), r.top(), r.right(), r.bottom()) for r in found]

    def landmarks(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        """The 68 landmarks of the face in ``box`` as float32 ``(68, 2)``."""
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        with self._lock:
            shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def find_faces(rgb: np.ndarray, models: FaceModels) -> list[FaceBox]:
    """Faces in ``rgb``, largest first, detected on a copy of at most ``DETECT_SIDE`` pixels.

    When none is found at that size the copy is searched again upsampled once,
    which finds faces down to about 40 pixels of it.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = rgb if scale == 1.0 else cv2.resize(
        rgb, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA
    )
    boxes = models.detect(small, 0) or models.detect(small, 1)
    full = [
        FaceBox(*(int(round(v / scale)) for v in (b.left, b.top, b.right, b.bottom))) for b in boxes
    ]
    # Largest first; ties broken by position so the order is stable.
    return sorted(full, key=lambda b: (-b.area, b.left, b.top))[:MAX_FACES]


@dataclass(frozen=True)
class FaceChecks:
    """Limits of a face the animators accept; see the module docstring for what each measures."""

    min_face_px: int = 64  # the detected box's shorter side, in pixels of the prepared image
    # Nose offset or jaw asymmetry: 0 frontal, about 0.3 at 10 degrees of yaw, 0.6 at 20, 0.9 at 30.
    max_yaw: float = 0.8
    min_eye_ratio: float = 0.4  # narrower eye width / wider eye width (about 0.5 at 20 degrees)
    max_mouth_offset: float = 0.5  # mouth centre from the nose line, in half the mouth width
    max_roll_deg: float = 40.0


@dataclass(frozen=True)
class FacePose:
    """Landmark geometry of one face (see the module docstring)."""

    yaw_nose: float
    yaw_jaw: float
    eye_ratio: float
    mouth_offset: float
    roll_deg: float
    implausible: str  # empty when every proportion is that of a human face, else what is off

    @property
    def yaw(self) -> float:
        """The larger of the two yaw estimates, signed."""
        return self.yaw_nose if abs(self.yaw_nose) >= abs(self.yaw_jaw) else self.yaw_jaw


# (what, landmarks, lowest, highest share of the eye-to-chin height below the eye line)
_HEIGHTS = (
    ("brows", list(range(17, 27)), -0.6, -0.02),
    ("nose tip", [30], 0.2, 0.65),
    ("mouth", list(range(48, 68)), 0.45, 0.88),
)
_WIDTH_RANGE = (0.9, 2.8)  # jaw width (0 to 16) over the eye-to-chin height


def face_pose(marks: np.ndarray) -> FacePose:
    """Measure yaw, eye and mouth visibility, roll and plausibility from 68 landmarks."""
    marks = marks.astype(np.float64)
    eye_l, eye_r = marks[36:42].mean(axis=0), marks[42:48].mean(axis=0)
    axis = eye_r - eye_l
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    right = axis / max(float(np.linalg.norm(axis)), 1e-9)
    down = np.array([-right[1], right[0]])
    x, y = marks @ right, marks @ down  # the face's own frame

    half_corners = max(0.5 * (x[45] - x[36]), 1e-9)
    yaw_nose = (x[30] - 0.5 * (x[36] + x[45])) / half_corners
    left_jaw, right_jaw = x[30] - x[0], x[16] - x[30]
    yaw_jaw = (left_jaw - right_jaw) / max(abs(left_jaw) + abs(right_jaw), 1e-9)
    widths = abs(x[39] - x[36]), abs(x[45] - x[42])
    eye_ratio = min(widths) / max(max(widths), 1e-9)
    mouth_half = max(0.5 * abs(x[54] - x[48]), 1e-9)
    mouth_offset = (0.5 * (x[48] + x[54]) - x[33]) / mouth_half

    eye_y = 0.5 * (y[36:42].mean() + y[42:48].mean())
    height = y[8] - eye_y
    problems = []
    if height <= 0 or x[45] <= x[36] or x[16] <= x[0]:
        problems.append("the landmarks are not in a face's order")
    else:
        for what, points, low, high in _HEIGHTS:
            share = (float(y[points].mean()) - eye_y) / height
            if not low <= share <= high:
                problems.append(f"{what} at {share:.2f} of the eye-to-chin height")
        width = (x[16] - x[0]) / height
        if not _WIDTH_RANGE[0] <= width <= _WIDTH_RANGE[1]:
            problems.append(f"face width {width:.2f} times its height")
        if not y[51] < y[57] < y[8] + 0.05 * height:
            problems.append("the lips are not between the nose and the chin")
    return FacePose(float(yaw_nose), float(yaw_jaw), float(eye_ratio), float(mouth_offset), roll,
                    "; ".join(problems))


def check_face(marks: np.ndarray, box: FaceBox, checks: FaceChecks) -> FacePose:
    """Raise ``PermanentError`` (``face_too_small`` or ``face_not_frontal``) unless the face can be animated."""
    size = min(box.width, box.height)
    if size < checks.min_face_px:
        raise PermanentError(
            f"the face is {size} pixels across; at least {checks.min_face_px} are needed "
            "(use a larger or closer photo)", code="face_too_small",
        )
    pose = face_pose(marks)
    reasons = []
    if pose.implausible:
        reasons.append(f"its landmarks do not fit a whole face ({pose.implausible})")
    if abs(pose.yaw) > checks.max_yaw:
        reasons.append(f"it is turned sideways (yaw {pose.yaw:+.2f}, at most ±{checks.max_yaw:.2f})")
    if pose.eye_ratio < checks.min_eye_ratio:
        reasons.append(f"one eye is hidden or foreshortened (eye widths {pose.eye_ratio:.2f} apart)")
    if abs(pose.mouth_offset) > checks.max_mouth_offset:
        reasons.append("the mouth is not under the nose")
    if abs(pose.roll_deg) > checks.max_roll_deg:
        reasons.append(f"the head is tilted {pose.roll_deg:+.0f} degrees")
    if reasons:
        raise PermanentError(
            "the face is not frontal enough to animate: " + "; ".join(reasons)
            + " (use a front-facing photo with the whole face visible)", code="face_not_frontal",
        )
    return pose
