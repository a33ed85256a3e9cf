"""A 2-D face rig on dlib's 68 landmarks: jaw and lips, eyelids and a small head drift.

The rig works on a region of interest (ROI) around the face. Its mesh is the 68
landmarks, two extra points on the lower inner lip, a few forehead points that move
with the head, and fixed anchors on the ROI border; everything outside the ROI,
and every triangle whose corners stay put, is left unchanged pixel for pixel.

The neutral pose has the lips closed: where the photo shows parted lips (a smile
with teeth, say), the inner lips are moved together, the upper one down and the
lower one up (the outer lip lines follow a little; jaw and chin stay), so that silence and bilabials read as a
closed mouth. Openness 0 is that closed pose; openness 1 drops the jaw from it.
The mesh samples the closing lips' edges from a pixel or two inside each lip
(landmarks on the inner lip line often sit on the teeth), and the mouth painter
draws the seam where they meet.

Landmark numbering (0-based, dlib's 68-point scheme): jaw 0-16 (chin 8), brows
17-26, nose 27-35, eyes 36-41 and 42-47, outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

import numpy as np

from workers.animation.landmark.mesh import TriangleMesh, delaunay
from workers.animation.landmark.motion import RigOptions
from workers.animation.landmark.mouth import MouthPainter
from workers.animation.portrait import PreparedPortrait

# Travel along the face's "down" axis at full openness, in units of the jaw drop.
# Upper-lip points move up a little; lower lip and chin follow the jaw. At openness 1 the
# inner lips part by one jaw drop (62 rises 0.12 of it, 66 drops 0.88).
OPEN_DOWN: dict[int, float] = {
    5: 0.25, 6: 0.6, 7: 0.88, 8: 1.0, 9: 0.88, 10: 0.6, 11: 0.25,
    48: 0.3, 54: 0.3, 60: 0.32, 64: 0.32,
    49: -0.05, 50: -0.08, 51: -0.08, 52: -0.08, 53: -0.05,
    61: -0.1, 62: -0.12, 63: -0.1,
    55: 0.72, 56: 0.86, 57: 0.9, 58: 0.86, 59: 0.72,
    65: 0.76, 66: 0.88, 67: 0.76,
}
_OPEN_INDEX = np.array(list(OPEN_DOWN), np.int32)
_OPEN_WEIGHT = np.array(list(OPEN_DOWN.values()), np.float32)
MOUTH = np.arange(48, 68)
# Inner lips, upper → lower, that the closed pose brings together.
LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
# Share of the photo's lip gap that the upper lip travels when closing; the lower lip does the rest.
UPPER_SHARE = 0.4
# How far into each lip the closed seam is sampled: a share of the gap (of the lower lip's
# sag between a corner and its next point, for the extra points), at most a few pixels.
SEAM_NUDGE = 0.2
SEAM_SAG = 0.3
SEAM_NUDGE_MAX = 3.0
# Extra mesh points halfway along the lower inner lip near the corners, as (corner, next point).
LIP_EXTRAS = ((60, 67), (64, 65))
# Points that follow the closing lips, as (point, inner-lip point it follows, share of its travel).
CLOSE_FOLLOW = (
    (49, 61, 0.2), (50, 61, 0.35), (51, 62, 0.35), (52, 63, 0.35), (53, 63, 0.2),
    (59, 67, 0.35), (58, 67, 0.6), (57, 66, 0.6), (56, 65, 0.6), (55, 65, 0.35),
)
# Upper eyelid point → the lower eyelid point it closes onto.
LIDS = {37: 41, 38: 40, 43: 47, 44: 46}
# Brow points above which forehead points are placed.
BROWS = (17, 19, 21, 22, 24, 26)


class FaceRig:
    """Poses the face of one portrait and renders frames of it."""

    def __init__(self, portrait: PreparedPortrait, options: RigOptions = RigOptions()) -> None:
        self.options = options
        self.image = portrait.image
        marks = portrait.landmarks.astype(np.float32)
        eye_line = marks[42:48].mean(axis=0) - marks[36:42].mean(axis=0)
        self.right = (eye_line / max(float(np.linalg.norm(eye_line)), 1e-6)).astype(np.float32)
        self.down = np.array([-self.right[1], self.right[0]], np.float32)
        self.face_height = float(np.linalg.norm(marks[8] - marks[27]))
        self.jaw_drop_px = options.jaw_drop * self.face_height

        self.roi = _face_roi(marks, portrait.width, portrait.height)
        x0, y0, x1, y1 = self.roi
        width, height = x1 - x0, y1 - y0
        forehead = marks[list(BROWS)] - self.down * 0.35 * self.face_height
        lip_extras = (marks[[a for a, _ in LIP_EXTRAS]] + marks[[b for _, b in LIP_EXTRAS]]) * 0.5
        head = np.concatenate([marks, lip_extras, forehead]) - np.array([x0, y0], np.float32)
        head[:, 0] = np.clip(head[:, 0], 1.0, width - 2.0)
        head[:, 1] = np.clip(head[:, 1], 1.0, height - 2.0)
        self.head_points = len(head)
        self.rest = np.concatenate([head, _border_anchors(width, height)]).astype(np.float32)

        self.closing = _closing_offsets(self.rest[:68], self.down)
        self.patch = np.ascontiguousarray(self.image[y0:y1, x0:x1])
        # Triangulate the open-mouthed pose, where the inner lips are well apart.
        reference = self.pose(1.0, 0.0, 0.0, np.zeros(2, np.float32))
        sources = _lip_sources(self.rest, self.down, self.closing)
        self.mesh = TriangleMesh(sources, delaunay(reference, width, height), width, height)
        self.mouth = MouthPainter(self.patch, self.rest[:68], self.down, self.jaw_drop_px)
        self._frame = self.image.copy()
        self._last_pose: np.ndarray | None = None

    def pose(self, openness: float, spread: float, blink: float, drift: np.ndarray) -> np.ndarray:
        """Mesh points (ROI pixels) for the given controls."""
        moved = self.rest.copy()
        moved[:68] += self.closing
        if openness or spread:
            moved[_OPEN_INDEX] += np.outer(_OPEN_WEIGHT * (openness * self.jaw_drop_px), self.down)
            mouth = moved[MOUTH]
            centre = mouth.mean(axis=0)
            along = (mouth - centre) @ self.right
            scale = self.options.lip_spread * spread - self.options.lip_round * openness
            moved[MOUTH] = mouth + np.outer(along * scale, self.right)
        if blink:
            # The lids meet a little above the lower lid: the upper one does most of the travel.
            for upper, lower in LIDS.items():
                meet = moved[lower] + (moved[upper] - moved[lower]) * self.options.lower_lid_share
                moved[upper] += (meet - moved[upper]) * blink
                moved[lower] += (meet - moved[lower]) * blink
        for k, (a, b) in enumerate(LIP_EXTRAS):
            moved[68 + k] = (moved[a] + moved[b]) * 0.5
        if drift.any():
            moved[: self.head_points] += drift
        # Keep the face inside the fixed border so no triangle folds over it.
        height, width = self.patch.shape[:2]
        np.clip(moved[: self.head_points, 0], 1.0, width - 2.0, out=moved[: self.head_points, 0])
        np.clip(moved[: self.head_points, 1], 1.0, height - 2.0, out=moved[: self.head_points, 1])
        return moved

    def frame(self, openness: float, spread: float, blink: float, drift: np.ndarray) -> np.ndarray:
        """The full BGR frame for the given controls.

        The returned array is reused by the next call: encode or copy it first.
        """
        moved = self.pose(openness, spread, blink, drift)
        if self._last_pose is not None and np.array_equal(moved, self._last_pose):
            return self._frame
        patch = self.mesh.warp(self.patch, moved)
        self.mouth.paint(patch, moved[:68])
        x0, y0, x1, y1 = self.roi
        self._frame[y0:y1, x0:x1] = patch
        self._last_pose = moved
        return self._frame


def _closing_offsets(marks: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Offsets ``(68, 2)`` that bring the photo's inner lips together (zeros where they touch)."""
    offsets = np.zeros((68, 2), np.float32)
    for upper, lower in LIP_PAIRS:
        gap = max(float((marks[lower] - marks[upper]) @ down), 0.0)
        offsets[upper] = down * (UPPER_SHARE * gap)
        offsets[lower] = -down * ((1.0 - UPPER_SHARE) * gap)
    for point, leader, share in CLOSE_FOLLOW:
        offsets[point] = offsets[leader] * share
    return offsets


def _lip_sources(rest: np.ndarray, down: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Where the mesh takes its pixels from: the rest points, with the inner lips moved into the lips.

    Landmarks on the inner lip line often sit a pixel inside the teeth; sampling the
    closing lips' edge from a little further into each lip keeps teeth out of the seam.
    """
    sources = rest.copy()
    if not closing.any():
        return sources
    for upper, lower in LIP_PAIRS:
        gap = max(float((rest[lower] - rest[upper]) @ down), 0.0)
        nudge = min(SEAM_NUDGE * gap, SEAM_NUDGE_MAX)
        sources[upper] -= down * nudge
        sources[lower] += down * nudge
    for k, (corner, lower) in enumerate(LIP_EXTRAS):
        # The lower inner lip sags between the corner and its next point: the chord runs through the teeth.
        drop = max(float((rest[lower] - rest[corner]) @ down), 0.0)
        sources[68 + k] += down * min(SEAM_SAG * drop, SEAM_NUDGE_MAX)
    return sources


def _face_roi(marks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A box around the landmarks with room for hair above and the jaw's travel below."""
    left, top = marks.min(axis=0)
    right, bottom = marks.max(axis=0)
    face_w, face_h = right - left, bottom - top
    x0 = int(max(0, np.floor(left - 0.3 * face_w)))
    x1 = int(min(width, np.ceil(right + 0.3 * face_w)))
    y0 = int(max(0, np.floor(top - 0.6 * face_h)))
    y1 = int(min(height, np.ceil(bottom + 0.35 * face_h)))
    return x0, y0, x1, y1


def _border_anchors(width: int, height: int, per_side: int = 4) -> np.ndarray:
    """Fixed points along the ROI border, corners included, ``per_side`` segments a side."""
    steps = np.linspace(0.0, 1.0, per_side + 1)[:-1]
    right, bottom = width - 1.0, height - 1.0
    top_edge = [(s * right, 0.0) for s in steps]
    right_edge = [(right, s * bottom) for s in steps]
    bottom_edge = [(right - s * right, bottom) for s in steps]
    left_edge = [(0.0, bottom - s * bottom) for s in steps]
    return np.array(top_edge + right_edge + bottom_edge + left_edge, np.float32)
