"""The inside of an opened mouth: a dark cavity, a hint of upper teeth, a soft edge.

When the rig opens the jaw, the warp stretches the thin band between the lips
(or the teeth already showing). Where the rig closes lips that the photo shows apart, the painter draws the
seam where they meet, a soft line a little darker than the lips that hides
the photo's teeth along it. The painter covers the inner-lip contour
(landmarks 60-67) with a cavity whose opacity grows with how far the lips are
apart beyond the photo's own gap, so the mouth opens smoothly and never shows
the stretched lip texture.

Upper teeth stay with the skull when the jaw drops. Where the photo shows teeth,
its own upper teeth are kept in place under the upper lip; otherwise a shaded
band of tooth colour under the upper lip hints at them.
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # sub-pixel bits for polygon filling
_UPPER_INNER = [60, 61, 62, 63, 64]
_GAP_PAIRS = ((61, 67), (62, 66), (63, 65))
_DEFAULT_TEETH = np.array([188.0, 208.0, 226.0], np.float32)  # BGR, ivory
# Cavity and tongue as fractions of the lip colour (BGR): dark, red-brown.
_CAVITY = np.array([0.16, 0.15, 0.3], np.float32)
_TONGUE = np.array([0.42, 0.4, 0.62], np.float32)
# The seam of closed lips: a darker lip colour, its width a share of the mouth's.
_SEAM = np.array([0.72, 0.7, 0.76], np.float32)
_SEAM_WIDTH = 0.02
_SEAM_OPACITY = 0.8
# How much of the photo's own gap (from the upper lip down) counts as upper teeth.
_OWN_TEETH_DEPTH = 0.7


class MouthPainter:
    """Paints the mouth cavity of one face; colours are taken from the portrait once."""

    def __init__(self, patch: np.ndarray, rest: np.ndarray, down: np.ndarray, jaw_drop_px: float) -> None:
        self.down = down.astype(np.float32)
        self.rest_gap = self._gap(rest)
        self.mouth_width = float(np.linalg.norm(rest[54] - rest[48]))
        # Opacity reaches 1 once the lips are this much further apart than in the photo.
        self.ramp_px = max(1.5, 0.3 * jaw_drop_px)
        self.feather = max(0.6, 0.018 * self.mouth_width)
        lips = self._lip_colour(patch, rest)
        self.cavity = lips * _CAVITY
        self.tongue = lips * _TONGUE
        self.teeth = self._teeth_colour(patch, rest)
        self.rest = rest.astype(np.float32)
        self.source = patch  # the unwarped photo, for its own teeth
        self.own_teeth = self.rest_gap >= max(2.0, 0.05 * self.mouth_width)
        # The rig closes lips that the photo shows apart; their seam is drawn as a soft dark line.
        self.closes = self.rest_gap >= 1.0
        self.seam = lips * _SEAM
        self.seam_width = max(1.0, _SEAM_WIDTH * self.mouth_width)
        self.seam_fade_px = max(1.5, 0.1 * self.mouth_width)

    def paint(self, patch: np.ndarray, points: np.ndarray) -> None:
        """Draw the lip seam or the cavity inside the inner-lip contour of ``points`` onto ``patch`` in place."""
        gap = self._gap(points)
        if self.closes and gap < self.seam_fade_px:
            self._paint_seam(patch, points, 1.0 - max(gap, 0.0) / self.seam_fade_px)
        strength = float(np.clip((gap - self.rest_gap) / self.ramp_px, 0.0, 1.0))
        if strength <= 0.01:
            return
        inner = points[60:68]
        pad = int(np.ceil(3 * self.feather)) + 2
        height, width = patch.shape[:2]
        x0 = max(int(np.floor(inner[:, 0].min())) - pad, 0)
        y0 = max(int(np.floor(inner[:, 1].min())) - pad, 0)
        x1 = min(int(np.ceil(inner[:, 0].max())) + pad + 1, width)
        y1 = min(int(np.ceil(inner[:, 1].max())) + pad + 1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        origin = np.array([x0, y0], np.float32)
        # Shrink the contour a little so the feathered edge stays on the inner lip line.
        centre = inner.mean(axis=0)
        contour = centre + (inner - centre) * 0.96 - origin
        mask = self._soft_polygon(contour, (y1 - y0, x1 - x0), self.feather)

        shape = (y1 - y0, x1 - x0)
        colour = self._cavity_layer(contour, shape)
        if self.own_teeth:
            teeth, teeth_colour = self._own_teeth(points, origin, shape)
        else:
            teeth = self._teeth_polygon(points, gap) - origin
            teeth_colour = self._shade_teeth(teeth, shape)
        teeth_mask = self._soft_polygon(teeth, shape, 0.7 * self.feather)[..., None]
        colour = colour * (1.0 - teeth_mask) + teeth_colour * teeth_mask

        alpha = (mask * strength)[..., None]
        region = patch[y0:y1, x0:x1].astype(np.float32)
        patch[y0:y1, x0:x1] = np.clip(region * (1.0 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)

    def _paint_seam(self, patch: np.ndarray, points: np.ndarray, opacity: float) -> None:
        """A soft line where the closed lips meet, hiding the photo's teeth along it."""
        line = np.array([points[60], *((points[up] + points[low]) * 0.5 for up, low in _GAP_PAIRS), points[64]],
                        np.float32)
        pad = int(np.ceil(self.seam_width + 3 * self.feather)) + 2
        height, width = patch.shape[:2]
        x0 = max(int(np.floor(line[:, 0].min())) - pad, 0)
        y0 = max(int(np.floor(line[:, 1].min())) - pad, 0)
        x1 = min(int(np.ceil(line[:, 0].max())) + pad + 1, width)
        y1 = min(int(np.ceil(line[:, 1].max())) + pad + 1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((line - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
        thickness = max(1, int(round(self.seam_width)))
        cv2.polylines(mask, [pts], False, 255, thickness=thickness, lineType=cv2.LINE_AA, shift=_SHIFT)
        alpha = cv2.GaussianBlur(mask, (0, 0), 0.35 * self.feather).astype(np.float32)[..., None]
        alpha *= opacity * _SEAM_OPACITY / 255.0
        region = patch[y0:y1, x0:x1].astype(np.float32)
        patch[y0:y1, x0:x1] = np.clip(region * (1.0 - alpha) + self.seam * alpha + 0.5, 0, 255).astype(np.uint8)

    def _gap(self, points: np.ndarray) -> float:
        """Mean distance between the inner lips along the face's down axis."""
        return float(np.mean([(points[low] - points[up]) @ self.down for up, low in _GAP_PAIRS]))

    def _cavity_layer(self, contour: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Dark cavity, turning towards the tongue's colour in its lower part."""
        top, bottom = float(contour[:, 1].min()), float(contour[:, 1].max())
        rows = (np.arange(shape[0], dtype=np.float32) - top) / max(bottom - top, 1.0)
        blend = np.clip((rows - 0.55) / 0.45, 0.0, 1.0) ** 2 * 0.6
        column = self.cavity + np.outer(blend, self.tongue - self.cavity)  # (h, 3)
        return np.broadcast_to(column[:, None, :], (shape[0], shape[1], 3))

    def _own_teeth(
        self, points: np.ndarray, origin: np.ndarray, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The photo's upper teeth, moved with the upper lip: their polygon and pixels."""
        shift = points[62] - self.rest[62]
        upper = self.rest[_UPPER_INNER]
        lower = upper.copy()
        for k, (up, low) in enumerate(_GAP_PAIRS, start=1):
            lower[k] = self.rest[up] + _OWN_TEETH_DEPTH * (self.rest[low] - self.rest[up])
        polygon = np.concatenate([upper, lower[::-1]]) + shift - origin
        move = np.array([[1.0, 0.0, origin[0] - shift[0]], [0.0, 1.0, origin[1] - shift[1]]], np.float32)
        pixels = cv2.warpAffine(
            self.source, move, (shape[1], shape[0]),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )
        return polygon, pixels.astype(np.float32)

    def _shade_teeth(self, polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Tooth colour, darker towards the mouth corners and the lower edge."""
        left, right = float(polygon[:, 0].min()), float(polygon[:, 0].max())
        top, bottom = float(polygon[:, 1].min()), float(polygon[:, 1].max())
        cols = (np.arange(shape[1], dtype=np.float32) - 0.5 * (left + right)) / max(0.5 * (right - left), 1.0)
        rows = (np.arange(shape[0], dtype=np.float32) - top) / max(bottom - top, 1.0)
        light = (1.0 - 0.35 * np.clip(np.abs(cols), 0.0, 1.0) ** 2)[None, :] * (
            1.0 - 0.15 * np.clip(rows, 0.0, 1.0) ** 2
        )[:, None]
        return light[..., None] * self.teeth

    def _teeth_polygon(self, points: np.ndarray, gap: float) -> np.ndarray:
        """A band under the upper inner lip, narrower than the mouth, as tall as the gap allows."""
        upper = points[_UPPER_INNER].astype(np.float32).copy()
        centre = upper[2]
        upper[0] = upper[0] + (centre - upper[0]) * 0.3
        upper[4] = upper[4] + (centre - upper[4]) * 0.3
        height = min(0.35 * max(gap, 0.0), 0.1 * self.mouth_width)
        # The band is deepest in the middle, like the incisors.
        depth = height * np.array([0.55, 0.9, 1.0, 0.9, 0.55], np.float32)
        lower = upper + np.outer(depth, self.down)
        return np.concatenate([upper, lower[::-1]])

    @staticmethod
    def _soft_polygon(polygon: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
        """A float32 mask in [0, 1] of ``polygon`` with its edge blurred by ``sigma`` pixels."""
        mask = np.zeros(shape, np.uint8)
        pts = np.round(polygon * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        soft = cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32)
        return soft * (1.0 / 255.0)

    @staticmethod
    def _lip_colour(patch: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Mean BGR of the lips: inside the outer contour, outside the inner one."""
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(rest[48:60]).astype(np.int32)], 255)
        cv2.fillPoly(mask, [np.round(rest[60:68]).astype(np.int32)], 0)
        if not mask.any():
            return np.array([90.0, 90.0, 150.0], np.float32)
        return np.array(cv2.mean(patch, mask=mask)[:3], np.float32)

    def _teeth_colour(self, patch: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """The photo's own teeth where its mouth is open, else a white matched to the face's light."""
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(rest[60:68]).astype(np.int32)], 255)
        inside = patch[mask > 0].astype(np.float32)
        if self.rest_gap >= max(2.0, 0.05 * self.mouth_width) and len(inside) >= 8:
            luma = inside @ np.array([0.114, 0.587, 0.299], np.float32)
            bright = inside[luma >= np.percentile(luma, 70)]
            return (bright.mean(axis=0) * 0.92).astype(np.float32)
        x0, y0 = np.maximum(np.floor(rest[27:36].min(axis=0)).astype(int), 0)
        x1, y1 = np.ceil(rest[27:36].max(axis=0)).astype(int) + 1
        nose = patch[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32)
        light = float(np.mean(nose @ np.array([0.114, 0.587, 0.299], np.float32))) if len(nose) else 150.0
        return (_DEFAULT_TEETH * float(np.clip(light / 170.0, 0.5, 1.0))).astype(np.float32)
