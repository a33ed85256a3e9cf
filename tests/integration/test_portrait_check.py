"""``POST /v1/portraits/check`` on a real coordinator: faces in the repo portrait, a 422 for a photo without one,
a code for what is no image, and the same key and size limits as an avatar upload."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.farm import Farm, coordinator_alone
from tests.media import landscape_png

pytestmark = pytest.mark.integration
PORTRAIT = (Path(__file__).parents[1] / "data" / "portrait.png").read_bytes()
MAX_UPLOAD = len(PORTRAIT) + 64_000  # room for the portrait, not for twice it


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    limits = {"TALKFARM_LIMITS__MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    with coordinator_alone(tmp_path_factory.mktemp("coordinator"), limits, key=("facecheck", "standard")) as farm:
        yield farm


def check(farm: Farm, data: bytes, name: str = "photo.png", token: str | None = None):
    with farm.client(token=token) as client:
        return client.post("/v1/portraits/check", files={"portrait": (name, data)})


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
