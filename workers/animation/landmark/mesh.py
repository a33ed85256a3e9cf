"""Piecewise-affine image warp over a fixed triangle mesh.

Each triangle of the moved mesh takes its pixels from the same triangle of the
rest mesh through one affine map; neighbouring maps agree on their shared edge,
so the warp has no seams. Triangles whose corners did not move are skipped and
their pixels are copied unchanged, so only the moving part of an image costs
anything and the rest stays identical pixel for pixel. A triangle squeezed flat
is not drawn; its neighbours cover its edge.
"""

from __future__ import annotations

import cv2
import numpy as np

# Sub-pixel precision of triangle rasterisation (bits).
_SHIFT = 4
_MOVED_EPS = 1e-3  # pixels; smaller moves count as none
_MIN_AREA = 0.05  # square pixels; flatter moved triangles are not drawn


def delaunay(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Delaunay triangles of ``points`` ``(n, 2)`` inside a ``width`` x ``height`` box, as ``(t, 3)`` indices.

    Coincident points are nudged apart first so every point keeps its own vertex.
    """
    nudged = points.astype(np.float64).copy()
    seen: set[tuple[float, float]] = set()
    for i, (x, y) in enumerate(nudged):
        while (round(x, 2), round(y, 2)) in seen:
            x, y = x + 0.05, y + 0.05
        seen.add((round(x, 2), round(y, 2)))
        nudged[i] = (x, y)
    nudged[:, 0] = np.clip(nudged[:, 0], 0.0, width - 1e-3)
    nudged[:, 1] = np.clip(nudged[:, 1], 0.0, height - 1e-3)
    subdiv = cv2.Subdiv2D((0, 0, width, height))
    vertex_of: dict[int, int] = {}
    for i, (x, y) in enumerate(nudged):
        vertex_of[subdiv.insert((float(x), float(y)))] = i
    triangles = []
    for tri in np.asarray(subdiv.getTriangleList()).reshape(-1, 3, 2):
        ids = []
        for x, y in tri:
            vertex, _ = subdiv.findNearest((float(x), float(y)))
            ids.append(vertex_of.get(vertex, -1))
        if -1 not in ids and len(set(ids)) == 3:
            triangles.append(ids)
    return np.array(triangles, dtype=np.int32).reshape(-1, 3)


class TriangleMesh:
    """A fixed triangulation of rest points that warps an image patch to moved points."""

    def __init__(self, rest: np.ndarray, triangles: np.ndarray, width: int, height: int) -> None:
        self.rest = rest.astype(np.float32)
        self.triangles = triangles.astype(np.int32)
        self.width = width
        self.height = height
        grid_y, grid_x = np.mgrid[0:height, 0:width]
        self._grid_x = grid_x.astype(np.float32)
        self._grid_y = grid_y.astype(np.float32)

    def inverse_affines(self, moved: np.ndarray, which: np.ndarray) -> np.ndarray:
        """For the triangles ``which``: ``(k, 2, 3)`` maps from moved to rest coordinates.

        A triangle squeezed to (almost) no area gets a pure translation instead.
        """
        dst = moved[self.triangles[which]].astype(np.float64)  # (k, 3, 2)
        src = self.rest[self.triangles[which]].astype(np.float64)
        lhs = np.concatenate([dst, np.ones((len(which), 3, 1))], axis=2)  # (k, 3, 3)
        det = np.linalg.det(lhs)
        solvable = np.abs(det) > 1e-2
        affines = np.zeros((len(which), 2, 3))
        affines[:, 0, 0] = affines[:, 1, 1] = 1.0
        affines[:, :, 2] = src.mean(axis=1) - dst.mean(axis=1)
        if solvable.any():
            solved = np.linalg.solve(lhs[solvable], src[solvable])  # (m, 3, 2)
            affines[solvable] = np.transpose(solved, (0, 2, 1))
        return affines.astype(np.float32)

    def warp(self, patch: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """``patch`` (the rest image) warped so that the rest points land on ``moved``."""
        delta = np.abs(moved - self.rest).max(axis=1) > _MOVED_EPS
        which = np.flatnonzero(delta[self.triangles].any(axis=1))
        if which.size == 0:
            return patch.copy()
        corners = np.concatenate([moved[self.triangles[which]], self.rest[self.triangles[which]]])
        corners = corners.reshape(-1, 2)
        x0 = max(int(np.floor(corners[:, 0].min())) - 1, 0)
        y0 = max(int(np.floor(corners[:, 1].min())) - 1, 0)
        x1 = min(int(np.ceil(corners[:, 0].max())) + 2, self.width)
        y1 = min(int(np.ceil(corners[:, 1].max())) + 2, self.height)

        index = np.full((y1 - y0, x1 - x0), len(which), np.int32)  # the identity, appended below
        scale = float(1 << _SHIFT)
        corners_moved = moved[self.triangles[which]]  # (k, 3, 2)
        edges = corners_moved[:, 1:] - corners_moved[:, :1]
        area = 0.5 * np.abs(edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0])
        fixed_point = np.round((corners_moved - (x0, y0)) * scale).astype(np.int32)
        for k in np.flatnonzero(area >= _MIN_AREA).tolist():
            # A triangle squeezed flat (the inner mouth of closed lips) is left out: drawn as a
            # line it would paint its source's pixels over the seam its neighbours share.
            cv2.fillConvexPoly(index, fixed_point[k], k, lineType=cv2.LINE_8, shift=_SHIFT)
        affines = np.concatenate([self.inverse_affines(moved, which), _IDENTITY], axis=0)
        coeff = affines.reshape(-1, 6)[index]  # (h, w, 6)
        gx, gy = self._grid_x[y0:y1, x0:x1], self._grid_y[y0:y1, x0:x1]
        map_x = coeff[..., 0] * gx + coeff[..., 1] * gy + coeff[..., 2] - x0
        map_y = coeff[..., 3] * gx + coeff[..., 4] * gy + coeff[..., 5] - y0
        out = patch.copy()
        out[y0:y1, x0:x1] = cv2.remap(
            patch[y0:y1, x0:x1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return out


_IDENTITY = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=np.float32)
