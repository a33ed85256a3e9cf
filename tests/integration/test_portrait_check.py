"""``POST /v1/portraits/check`` on a real coordinator: faces in the repo portrait, a 422 for a photo without one,
a code for what is no image, and the same key and size limits as an avatar upload."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.farm import Farm, create_key, delete_broker_objects, start_coordinator, start_lru_redis

pytestmark = pytest.mark.integration
PORTRAIT = (Path(__file__).parents[1] / "data" / "portrait.png").read_bytes()
MAX_UPLOAD = len(PORTRAIT) + 64_000  # room for the portrait, not for twice it


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    redis = start_lru_redis()
    farm = start_coordinator(tmp_path_factory.mktemp("coordinator"), redis.url,
                             {"TALKFARM_LIMITS__MAX_UPLOAD_BYTES": str(MAX_UPLOAD)})
    farm.token = create_key(farm, "facecheck", "standard")
    try:
        yield farm
    finally:
        farm.process.kill()
        farm.process.wait()
        delete_broker_objects(farm.settings)
        redis.process.terminate()
        redis.process.wait()


def check(farm: Farm, data: bytes, name: str = "photo.png", token: str | None = None):
    with farm.client(token=token) as client:
        return client.post("/v1/portraits/check", files={"portrait": (name, data)})


def landscape_png() -> bytes:
    """Sky over a field: no face anywhere."""
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:180] = np.linspace((120, 170, 250), (200, 225, 255), 180).astype(np.uint8)[:, None, :]
    pixels[180:] = (60, 140, 50)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_the_portrait_has_a_face(coordinator: Farm) -> None:
    answer = check(coordinator, PORTRAIT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["width"], body["height"]) == (512, 512)
    face = body["faces"][0]
    assert set(face) == {"left", "top", "right", "bottom"}
    assert face["left"] < 224 < face["right"] and face["top"] < 113 < face["bottom"]


def test_a_photo_without_a_face_is_422_no_face(coordinator: Farm) -> None:
    answer = check(coordinator, landscape_png())
    assert answer.status_code == 422
    assert answer.json()["code"] == "no_face" and "face" in answer.json()["message"]


def test_what_is_no_image_gets_a_code(coordinator: Farm) -> None:
    garbage = check(coordinator, b"\x00\x01 this is not an image \xff" * 40, name="photo.jpg")
    assert garbage.status_code == 415 and garbage.json()["code"] == "bad_image"
    with coordinator.client() as client:
        missing = client.post("/v1/portraits/check", data={"x": "1"})
    assert missing.status_code == 422 and missing.json()["code"] == "portrait_required"


def test_the_key_and_the_size_limit_hold(coordinator: Farm) -> None:
    anonymous = check(coordinator, PORTRAIT, token="")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    too_big = check(coordinator, PORTRAIT * 2)
    assert too_big.status_code == 413 and too_big.json()["code"] == "upload_too_large"
