"""Paste-back in torch (the pooled pipeline's, on the GPU) against the numpy reference ``face.paste_back``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from workers.animation.wav2lip.face import CropBox, feather_mask, paste_back
from workers.animation.wav2lip.torch_paste import PasteTarget, paste_batch, resize_matrices

pytestmark = pytest.mark.unit
SIZE = 96


BOXES = [
    CropBox(150, 110, 360, 360),  # larger than the crop both ways: cubic
    CropBox(20, 30, 80, 100),  # smaller both ways: area
    CropBox(200, 50, 330, 90),  # wider, shorter: cubic (either side grows)
    CropBox(0, 0, SIZE, SIZE),  # the crop's own size, at the corner
    CropBox(430, 400, 512, 512),  # at the far edges
]


@pytest.mark.parametrize("box", BOXES, ids=lambda b: f"{b.width}x{b.height}")
def test_torch_paste_matches_the_numpy_reference(portrait: np.ndarray, box: CropBox):
    rng = np.random.default_rng(box.width * 1000 + box.height)
    # Out of range on purpose: both must clip to [0, 1] first.
    faces = rng.uniform(-0.2, 1.2, (6, 3, SIZE, SIZE)).astype(np.float32)
    mask = feather_mask(box)
    regions = paste_batch(portrait, box, faces, SIZE, mask)
    assert regions.shape == (6, box.height, box.width, 3) and regions.dtype == np.uint8
    for face, region in zip(faces, regions):
        reference = paste_back(portrait, box, face, mask)[box.top:box.bottom, box.left:box.right]
        difference = np.abs(reference.astype(np.int16) - region.astype(np.int16))
        # The same arithmetic in another order: at most one level, on a rare pixel at a rounding edge.
        assert difference.max() <= 1
        assert (difference > 0).mean() < 1e-3
        # Where the mask is 0 the portrait's pixels come back exactly.
        outside = mask[:, :, 0] == 0
        original = portrait[box.top:box.bottom, box.left:box.right]
        assert np.array_equal(region[outside], original[outside])


def test_resize_matrices_reproduce_opencv(portrait: np.ndarray):
    crop = portrait[100:196, 200:296].astype(np.float32)
    for width, height in [(205, 240), (60, 70), (150, 90)]:
        rows, cols = resize_matrices(SIZE, width, height)
        growing = width > SIZE or height > SIZE
        expected = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC if growing else cv2.INTER_AREA)
        resized = np.einsum("hs,stc,wt->hwc", rows, crop, cols)
        assert np.abs(resized - expected).max() < 1e-2


def test_half_precision_faces_paste_like_their_float32_values(portrait: np.ndarray):
    box = BOXES[0]
    rng = np.random.default_rng(5)
    faces = rng.uniform(0, 1, (3, 3, SIZE, SIZE)).astype(np.float16)
    target = PasteTarget(portrait, box, feather_mask(box), SIZE, torch.device("cpu"))
    with torch.inference_mode():
        half = target.paste(torch.from_numpy(faces)).numpy()
        single = target.paste(torch.from_numpy(faces.astype(np.float32))).numpy()
    assert np.array_equal(half, single)


def test_a_mask_of_another_size_is_refused(portrait: np.ndarray):
    with pytest.raises(ValueError, match="mask"):
        PasteTarget(portrait, BOXES[0], feather_mask(BOXES[1]), SIZE, torch.device("cpu"))
