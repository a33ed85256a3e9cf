"""The quick face check of a portrait (OpenCV's Haar cascade), on the repo portrait and on images without a face."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coordinator.errors import ApiError
from coordinator.facecheck import FaceChecker

pytestmark = pytest.mark.unit

PORTRAIT = Path(__file__).parents[1] / "data" / "portrait.png"


def png(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=save.pop("format", "PNG"), **save)  # type: ignore[arg-type]
    return out.getvalue()


def no_face_image(side: int = 400) -> Image.Image:
    """A smooth colour gradient with a few rectangles: nothing a face detector should take for a face."""
    y, x = np.mgrid[0:side, 0:side]
    pixels = np.stack([x * 255 // side, y * 255 // side, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    pixels[50:120, 60:300] = (20, 200, 40)
    pixels[250:380, 200:260] = (230, 230, 230)
    return Image.fromarray(pixels)


def test_the_portrait_has_one_face_in_its_middle() -> None:
    found = FaceChecker(min_face_px=64).check(PORTRAIT.read_bytes())
    assert (found.width, found.height) == (512, 512)
    assert len(found.faces) >= 1
    face = found.faces[0]
    assert face.width >= 64 and face.left < 224 < face.right and face.top < 113 < face.bottom  # her face
    assert [f.area for f in found.faces] == sorted((f.area for f in found.faces), reverse=True)


def test_boxes_are_in_pixels_of_the_full_image() -> None:
    big = Image.open(PORTRAIT).convert("RGB").resize((1600, 1600))
    small, large = FaceChecker(64).check(PORTRAIT.read_bytes()), FaceChecker(64).check(png(big))
    assert (large.width, large.height) == (1600, 1600)
    ratio = large.faces[0].width / small.faces[0].width
    assert 2.5 < ratio < 3.8  # the detector ran on a 640-pixel copy; the box is scaled back


def test_a_photo_turned_by_its_exif_tag_is_checked_upright() -> None:
    upright = Image.open(PORTRAIT).convert("RGB")
    stored = upright.rotate(90, expand=True)  # as a phone stores it, with orientation 6: turn it back clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    found = FaceChecker(64).check(png(stored, format="JPEG", exif=exif.tobytes()))
    assert len(found.faces) >= 1


def test_no_face_is_a_422_with_its_code() -> None:
    with pytest.raises(ApiError) as refused:
        FaceChecker(64).check(png(no_face_image()))
    assert (refused.value.status, refused.value.code) == (422, "no_face")
    assert "no face" in refused.value.message


def test_a_face_too_small_for_the_animation_stage() -> None:
    tiny = Image.open(PORTRAIT).convert("RGB").resize((240, 240))  # her face about 48 pixels across
    with pytest.raises(ApiError) as refused:
        FaceChecker(min_face_px=64).check(png(tiny))
    assert (refused.value.status, refused.value.code) == (422, "face_too_small")
    assert FaceChecker(min_face_px=16).check(png(tiny)).faces
