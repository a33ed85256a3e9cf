"""The one rectangle type for faces: what a detector finds in a portrait, in pixels.

The animation stage's dlib detector and the coordinator's quick face check
(``coordinator.facecheck``) both answer with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixels of its image: rows ``top:bottom``, columns ``left:right``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return max(0, self.right - self.left)

    @property
    def height(self) -> int:
        return max(0, self.bottom - self.top)

    @property
    def area(self) -> int:
        return self.width * self.height
