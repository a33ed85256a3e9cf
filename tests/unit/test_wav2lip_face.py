"""Face crops for the Wav2Lip network: the box, the 6-channel input, the feathered paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from workers.animation.wav2lip.face import CropBox, CropOptions, crop_box, face_input, feather_mask, paste_back

pytestmark = pytest.mark.unit


def landmarks(left: float = 100, top: float = 120, width: float = 120, height: float = 140) -> np.ndarray:
    """68 points laid out like dlib's: jaw 0-16 around the bottom, brows 17-26 at the top."""
    points = np.zeros((68, 2), np.float32)
    angles = np.linspace(np.pi, 0, 17)
    points[:17, 0] = left + width / 2 + width / 2 * np.cos(angles)
    points[:17, 1] = top + height / 3 + (2 * height / 3) * np.sin(angles)  # chin at top + height
    points[17:27, 0] = np.linspace(left + 10, left + width - 10, 10)
    points[17:27, 1] = top
    points[27:, 0] = left + width / 2
    points[27:, 1] = np.linspace(top + 20, top + height - 20, 41)
    return points


def test_box_reaches_above_the_brows_and_below_the_chin():
    box = crop_box(landmarks(), (512, 512, 3))
    assert box.left == int(np.floor(100 - 0.06 * 120)) and box.right == int(np.ceil(220 + 0.06 * 120))
    assert box.top == int(np.floor(120 - 0.25 * 140)) and box.bottom == int(np.ceil(260 + 0.08 * 140))


def test_box_is_clipped_to_the_image_and_tiny_faces_are_refused():
    box = crop_box(landmarks(left=-20, top=5), (200, 180, 3))
    assert box.left == 0 and box.top == 0 and box.right <= 180 and box.bottom <= 200
    with pytest.raises(ValueError):
        crop_box(np.full((68, 2), 50.0), (512, 512, 3))
    with pytest.raises(ValueError):
        crop_box(np.zeros((5, 2)), (512, 512, 3))


def test_face_input_is_the_masked_crop_then_the_reference():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    box = CropBox(50, 40, 242, 232)  # 192 px, twice the network's size
    face = face_input(image, box, 96)
    assert face.shape == (6, 96, 96) and face.dtype == np.float32
    assert face.min() >= 0.0 and face.max() <= 1.0
    assert np.all(face[:3, 48:] == 0.0)  # the lower half is what the network must fill in
    assert np.array_equal(face[:3, :48], face[3:, :48])
    crop = image[40:232, 50:242].astype(np.float32) / 255
    shrunk = crop.reshape(96, 2, 96, 2, 3).mean(axis=(1, 3)).transpose(2, 0, 1)  # INTER_AREA at 2:1
    assert np.allclose(face[3:], shrunk, atol=1 / 255)


def test_feather_mask_is_zero_on_the_border_and_above_the_middle_and_ramps_smoothly():
    box = CropBox(0, 0, 160, 200)
    mask = feather_mask(box)[:, :, 0]
    assert mask.shape == (200, 160)
    assert np.all(mask[:100] == 0.0)  # upper half of the crop is never touched
    assert np.all(mask[-1] == 0.0) and np.all(mask[:, 0] == 0.0) and np.all(mask[:, -1] == 0.0)
    assert mask.max() == pytest.approx(1.0)
    assert mask[160, 80] == pytest.approx(1.0)  # the lower face itself is fully regenerated
    ramp = 0.12 * 160
    # No hard edge: neighbouring pixels differ by at most the smoothstep's steepest slope.
    steepest = 1.5 / ramp
    assert np.abs(np.diff(mask, axis=0)).max() <= steepest + 1e-6
    assert np.abs(np.diff(mask, axis=1)).max() <= steepest + 1e-6
    # Values strictly between 0 and 1 over the ramp's whole width.
    column = mask[:, 80]
    assert np.count_nonzero((column > 0.01) & (column < 0.99)) >= ramp - 2


def test_paste_back_keeps_every_pixel_outside_the_mask_and_blends_inside():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 200, (240, 260, 3), dtype=np.uint8)
    box = CropBox(60, 30, 200, 210)
    mask = feather_mask(box, CropOptions())
    white = np.ones((3, 96, 96), np.float32)
    before = image.copy()
    frame = paste_back(image, box, white, mask)
    assert np.array_equal(image, before)  # the portrait itself is not modified
    assert frame.shape == image.shape and frame.dtype == np.uint8
    untouched = np.ones(image.shape[:2], bool)
    untouched[box.top:box.bottom, box.left:box.right] = mask[:, :, 0] == 0
    assert np.array_equal(frame[untouched], image[untouched])
    centre = (box.top + int(0.8 * box.height), box.left + box.width // 2)
    assert np.all(frame[centre] == 255)
    # In the ramp the frame lies between the portrait and the pasted face.
    inner = frame[box.top:box.bottom, box.left:box.right].astype(int)
    original = image[box.top:box.bottom, box.left:box.right].astype(int)
    assert np.all(inner >= original)
    assert not np.array_equal(paste_back(image, box, white * 0, mask), frame)
