"""Decoding portraits: render size, EXIF orientation, every colour mode, huge images, bad bytes."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from contracts.errors import PermanentError
from workers.animation.portrait import MAX_SHORT_SIDE, decode_image, render_size

pytestmark = pytest.mark.unit


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _quadrants(width: int = 64, height: int = 48) -> Image.Image:
    """Four colours, one a quadrant, so any flip or turn shows (RGB)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = (220, 30, 30)
    pixels[: height // 2, width // 2:] = (30, 220, 30)
    pixels[height // 2:, : width // 2] = (30, 30, 220)
    pixels[height // 2:, width // 2:] = (230, 230, 40)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("size, max_side, expected", [
    ((512, 512), 1920, (512, 512)),
    ((4000, 3000), 1920, (1440, 1080)),  # the shorter side is held to 1080
    ((3000, 4000), 1920, (1080, 1440)),
    ((1000, 3000), 1920, (640, 1920)),  # the longer side is held to max_side
    ((1024, 1024), 512, (512, 512)),
    ((513, 511), 1920, (512, 510)),  # even sides for H.264
])
def test_render_size(size: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    assert render_size(*size, max_side) == expected
    assert min(expected) <= MAX_SHORT_SIDE


# The transpose that undoes each orientation: stored = upright.transpose(this); EXIF n shows it upright.
_STORE = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    upright = _quadrants()
    transpose = _STORE[orientation]
    stored = upright if transpose is None else upright.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(_encode(stored, "JPEG", quality=95, exif=exif), 1920)
    expected = np.asarray(upright)[:, :, ::-1]  # BGR
    assert decoded.shape == expected.shape
    assert np.abs(decoded.astype(int) - expected).mean() < 6.0


def test_every_colour_mode_becomes_bgr() -> None:
    rgb = _quadrants()
    gray = rgb.convert("L")
    cases = {
        "RGB png": _encode(rgb, "PNG"),
        "L png": _encode(gray, "PNG"),
        "1 png": _encode(gray.point(lambda v: 255 if v > 100 else 0).convert("1"), "PNG"),
        "P png": _encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "PNG"),
        "CMYK jpeg": _encode(rgb.convert("CMYK"), "JPEG", quality=95),
        "RGB webp": _encode(rgb, "WEBP", lossless=True),
        "RGB bmp": _encode(rgb, "BMP"),
        "RGB tiff": _encode(rgb, "TIFF"),
    }
    for name, data in cases.items():
        decoded = decode_image(data, 1920)
        assert decoded.dtype == np.uint8 and decoded.shape == (48, 64, 3), name
    # Colour survives the conversions: the top-left quadrant is red (BGR).
    for name in ("RGB png", "P png", "CMYK jpeg", "RGB webp", "RGB tiff"):
        b, g, r = decode_image(cases[name], 1920)[10, 10].astype(int)
        assert r > 180 and g < 80 and b < 80, (name, (b, g, r))


def test_transparency_is_composited_over_white() -> None:
    rgba = _quadrants().convert("RGBA")
    alpha = np.full((48, 64), 255, np.uint8)
    alpha[:, :16] = 0  # a transparent strip on the left
    rgba.putalpha(Image.fromarray(alpha))
    for data in (_encode(rgba, "PNG"), _encode(rgba.convert("LA"), "PNG"), _encode(rgba, "WEBP", lossless=True)):
        decoded = decode_image(data, 1920)
        assert decoded[:, :16].min() >= 250  # white where transparent
        assert decoded[30, 40].max() < 250  # opaque pixels keep their colour
    palette = _quadrants().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    index = palette.getpixel((5, 5))
    palette.info["transparency"] = index
    decoded = decode_image(_encode(palette, "PNG", transparency=index), 1920)
    assert decoded[5, 5].min() >= 250


def test_sixteen_bit_images_are_scaled_not_clipped() -> None:
    deep = np.zeros((40, 40), np.uint16)
    deep[:, 20:] = 65535
    deep[:20, :20] = 32768
    decoded = decode_image(_encode(Image.fromarray(deep), "PNG"), 1920)
    assert decoded[30, 30].tolist() == [255, 255, 255]
    assert abs(int(decoded[5, 5, 0]) - 128) <= 1  # half scale is mid gray, not white
    assert decoded[30, 5].tolist() == [0, 0, 0]


def test_huge_images_are_scaled_while_decoding() -> None:
    width, height = 6000, 4000
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                       np.full((height, width), 90, np.float32)], axis=2).astype(np.uint8)
    for fmt in ("JPEG", "PNG"):
        data = _encode(Image.fromarray(pixels), fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 1}))
        started = time.perf_counter()
        decoded = decode_image(data, 1920)
        elapsed = time.perf_counter() - started
        assert decoded.shape == (1080, 1620, 3), fmt
        # The gradients survive the scaling (BGR: blue is the constant 90).
        assert abs(int(decoded[540, 10, 0]) - 90) <= 3 and decoded[540, -10, 2] > 240 and decoded[-10, 800, 1] > 240
        assert elapsed < (1.5 if fmt == "JPEG" else 4.0), (fmt, elapsed)


def test_unusable_bytes_are_refused_with_a_code() -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    truncated = _encode(noise, "PNG")[:2000]
    for data in (b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(100), truncated):
        with pytest.raises(PermanentError) as caught:
            decode_image(data, 1920)
        assert caught.value.code == "bad_image"
    with pytest.raises(PermanentError) as caught:
        decode_image(_encode(_quadrants(20, 20), "PNG"), 1920)
    assert caught.value.code == "bad_image" and "too small" in caught.value.message
    with pytest.raises(PermanentError) as caught:
        decode_image(_encode(_quadrants(), "PNG"), 1920, max_pixels=1000)
    assert caught.value.code == "image_too_large"
