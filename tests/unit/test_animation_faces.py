"""Whether a face can be animated, decided from its 68 landmarks: size, yaw, visibility, plausibility.

The landmarks are those of a synthetic head: a frontal 68-point layout given a
depth per point (the face curves back towards the ears, the nose stands out) and
turned about the vertical axis, then projected. That is how a turned head's
landmarks move in a photo, without needing photos of turned heads.
"""

from __future__ import annotations

import numpy as np
import pytest

from contracts.errors import PermanentError
from workers.animation.faces import FaceBox, FaceChecks, check_face, face_pose

pytestmark = pytest.mark.unit

# A frontal face (dlib's 68 points, pixels): the repo portrait's landmarks, rounded.
FRONTAL = np.array([
    [180, 105], [180, 117], [182, 129], [185, 141], [189, 152], [195, 162], [203, 170], [212, 175], [221, 178],
    [231, 176], [240, 172], [248, 165], [254, 155], [258, 144], [260, 132], [261, 120], [262, 108],
    [186, 96], [191, 91], [198, 90], [205, 91], [212, 93], [229, 93], [236, 91], [243, 90], [250, 91], [255, 96],
    [221, 103], [221, 111], [221, 118], [221, 126], [213, 130], [217, 132], [222, 133], [226, 132], [230, 130],
    [194, 104], [199, 101], [205, 101], [210, 105], [205, 106], [199, 106],
    [232, 105], [237, 101], [243, 101], [248, 104], [243, 106], [237, 106],
    [201, 141], [209, 139], [217, 139], [222, 140], [227, 139], [236, 139], [245, 141],
    [237, 151], [229, 155], [222, 156], [215, 155], [208, 151],
    [204, 141], [217, 143], [223, 144], [229, 143], [243, 142], [229, 150], [223, 150], [217, 150],
], np.float64)
BOX = FaceBox(179, 83, 266, 170)


def _turned(degrees: float, marks: np.ndarray = FRONTAL) -> np.ndarray:
    centre = marks.mean(axis=0)
    points = marks - centre
    half = 0.5 * (points[16, 0] - points[0, 0])
    depth = -0.9 * half * (points[:, 0] / half) ** 2
    depth[27:31] += np.array([0.25, 0.35, 0.45, 0.55]) * half  # the nose stands out
    depth[31:36] += 0.35 * half
    depth[48:68] += 0.15 * half
    angle = np.radians(degrees)
    points[:, 0] = points[:, 0] * np.cos(angle) + depth * np.sin(angle)
    return points + centre


def _rotated(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = FRONTAL.mean(axis=0)
    return (FRONTAL - centre) @ turn.T + centre


def test_a_frontal_face_passes_and_measures_near_zero() -> None:
    pose = check_face(FRONTAL, BOX, FaceChecks())
    assert abs(pose.yaw) < 0.1 and pose.eye_ratio > 0.9 and abs(pose.mouth_offset) < 0.1
    assert abs(pose.roll_deg) < 5 and pose.implausible == ""


@pytest.mark.parametrize("degrees", [-15, -8, 8, 15])
def test_a_slightly_turned_face_passes(degrees: float) -> None:
    check_face(_turned(degrees), BOX, FaceChecks())


@pytest.mark.parametrize("degrees", [-60, -40, 40, 60])
def test_a_turned_away_face_is_not_frontal(degrees: float) -> None:
    with pytest.raises(PermanentError) as caught:
        check_face(_turned(degrees), BOX, FaceChecks())
    assert caught.value.code == "face_not_frontal"
    assert "turned sideways" in caught.value.message or "eye" in caught.value.message


def test_yaw_grows_with_the_turn_and_keeps_its_sign() -> None:
    yaws = [face_pose(_turned(d)).yaw for d in (0, 10, 20, 30)]
    assert yaws == sorted(yaws) and yaws[-1] > 0.8
    assert face_pose(_turned(-20)).yaw == pytest.approx(-face_pose(_turned(20)).yaw, abs=0.15)


def test_a_tilted_head_is_judged_in_its_own_frame() -> None:
    check_face(_rotated(25), BOX, FaceChecks())
    assert face_pose(_rotated(25)).roll_deg == pytest.approx(25 + face_pose(FRONTAL).roll_deg, abs=1.0)
    with pytest.raises(PermanentError) as caught:
        check_face(_rotated(60), BOX, FaceChecks())
    assert caught.value.code == "face_not_frontal" and "tilted" in caught.value.message


def test_implausible_landmarks_are_not_a_face() -> None:
    collapsed = FRONTAL.copy()
    collapsed[48:68] = collapsed[36:42].mean(axis=0)  # the mouth fitted onto an eye: an occluded face
    with pytest.raises(PermanentError) as caught:
        check_face(collapsed, BOX, FaceChecks())
    assert caught.value.code == "face_not_frontal" and "mouth" in caught.value.message
    squashed = FRONTAL.copy()
    squashed[:, 1] = FRONTAL[:, 1].mean() + 0.3 * (FRONTAL[:, 1] - FRONTAL[:, 1].mean())
    assert "face width" in face_pose(squashed).implausible
    flipped = FRONTAL.copy()
    flipped[:, 1] = -flipped[:, 1]  # upside down: the chin above the eyes
    assert face_pose(flipped).implausible


def test_a_hidden_eye_is_not_frontal() -> None:
    hidden = FRONTAL.copy()
    hidden[42:48] = hidden[42:48].mean(axis=0) + (hidden[42:48] - hidden[42:48].mean(axis=0)) * 0.2
    with pytest.raises(PermanentError) as caught:
        check_face(hidden, BOX, FaceChecks())
    assert caught.value.code == "face_not_frontal" and "eye" in caught.value.message


def test_a_small_face_is_too_small() -> None:
    with pytest.raises(PermanentError) as caught:
        check_face(FRONTAL, FaceBox(0, 0, 50, 60), FaceChecks(min_face_px=64))
    assert caught.value.code == "face_too_small"
    assert "50 pixels" in caught.value.message and "64" in caught.value.message
    check_face(FRONTAL, FaceBox(0, 0, 50, 60), FaceChecks(min_face_px=48))
