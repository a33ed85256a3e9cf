"""Portrait preparation on real photos with the real dlib models: several faces, small and hidden faces,
the preparation cache in the animator, and the `face` request option through the farm."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from contracts.errors import PermanentError
from contracts.settings import AnimationSettings, Settings
from tests.conftest import wav_of
from tests.farm import Farm
from workers.animation.backends.landmark import LandmarkAnimator
from workers.animation.base import RenderRequest
from workers.animation.faces import FaceChecks, FaceModels
from workers.animation.portrait import prepare_portrait
from workers.animation.portrait_cache import PortraitCache, portrait_digest
from workers.animation.prepare import landmark_model_path

pytestmark = pytest.mark.e2e

PORTRAIT = Path(__file__).resolve().parents[1] / "data" / "portrait.png"
RATE = 16000


@pytest.fixture(scope="module")
def models() -> FaceModels:
    return FaceModels(landmark_model_path())


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _two_faces() -> bytes:
    """The portrait's head twice on one canvas: large on the right, smaller on the left."""
    photo = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    head = photo[40:230, 125:320]  # 190 x 195 around the face
    canvas = np.full((420, 640, 3), 200, np.uint8)
    large = cv2.resize(head, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)[:400, :390]
    small = cv2.resize(head, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_AREA)
    canvas[10:10 + large.shape[0], 640 - large.shape[1]:] = large
    canvas[60:60 + small.shape[0], 0:small.shape[1]] = small
    return _png(canvas)


def test_the_largest_face_is_the_default_and_others_are_chosen_by_index(models: FaceModels) -> None:
    data = _two_faces()
    first, second = (prepare_portrait(data, 1920, models, face_index=i) for i in (0, 1))
    assert first.face_count == second.face_count == 2
    assert first.box.area > 1.5 * second.box.area
    assert first.box.left > 250 > second.box.right  # the large head is on the right
    assert first.landmarks[:, 0].min() > 250 and second.landmarks[:, 0].max() < 250
    with pytest.raises(PermanentError) as caught:
        prepare_portrait(data, 1920, models, face_index=2)
    assert caught.value.code == "no_face" and "2 faces" in caught.value.message


def test_a_face_below_the_minimum_size_is_too_small(models: FaceModels) -> None:
    photo = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    data = _png(cv2.resize(photo, (300, 300), interpolation=cv2.INTER_AREA))  # the face is about 50 px
    with pytest.raises(PermanentError) as caught:
        prepare_portrait(data, 1920, models, checks=FaceChecks(min_face_px=64))
    assert caught.value.code == "face_too_small" and "64" in caught.value.message
    assert prepare_portrait(data, 1920, models, checks=FaceChecks(min_face_px=40)).face_count == 1


def test_a_hidden_face_is_refused(models: FaceModels) -> None:
    photo = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    marks = prepare_portrait(PORTRAIT.read_bytes(), 1920, models).landmarks
    covered = photo.copy()
    (x0, _), (x1, y1) = marks.min(axis=0).astype(int), marks.max(axis=0).astype(int)
    covered[int(marks[30, 1]):y1 + 10, x0 - 10:x1 + 10] = (60, 90, 160)  # the lower half, under a cloth
    with pytest.raises(PermanentError) as caught:
        prepare_portrait(_png(covered), 1920, models)
    # The badge on the suit looks a little like a face to the detector; it must not be animated instead.
    assert caught.value.code in ("no_face", "face_not_frontal")


def test_the_animator_prepares_a_photo_once(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path,  # type: ignore[call-arg]
                        animation=AnimationSettings(max_side=512))
    animator = LandmarkAnimator(settings)
    animator.load()
    assert animator.preparer is not None
    data = _two_faces()
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)).astype(np.float32)
    for face in (0, 1, 0):
        animator.render(RenderRequest(portrait=data, audio=audio, sample_rate=RATE, face_index=face,
                                      output=tmp_path / f"face{face}.mp4"))
    assert (animator.preparer.hits, animator.preparer.misses) == (2, 1)
    stored = PortraitCache(settings.artifact_dir / "prepared").path(portrait_digest(data), 512)
    assert stored.is_file()
    # A second worker process (a fresh animator) reads the stored preparation instead of finding faces.
    other = LandmarkAnimator(settings)
    other.load()
    assert other.preparer is not None
    started = time.perf_counter()
    analysis = other.preparer.analyse(data)
    assert time.perf_counter() - started < 0.05 and analysis.faces == 2
    assert (other.preparer.hits, other.preparer.misses) == (1, 0)


def test_the_face_option_through_the_farm(farm: Farm) -> None:
    data = _two_faces()
    t = np.arange(RATE) / RATE
    speech = wav_of(0.4 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)), RATE)
    with farm.client() as client:
        for bad in ("-1", "x", "99", "1.5"):
            answer = client.post("/v1/jobs", data={"mode": "lipsync", "face": bad},
                                 files={"portrait": ("p.png", data), "audio": ("s.wav", speech)})
            assert answer.status_code == 422 and answer.json()["code"] == "bad_face", (bad, answer.text)
        jobs = {}
        for face in ("1", "2"):
            answer = client.post("/v1/jobs", data={"mode": "lipsync", "face": face},
                                 files={"portrait": ("p.png", data), "audio": ("s.wav", speech)})
            assert answer.status_code == 202, answer.text
            jobs[face] = answer.json()["job_id"]
    done = farm.wait_job(jobs["1"])
    assert done["status"] == "succeeded", done.get("error")
    missing = farm.wait_job(jobs["2"])
    assert missing["status"] == "failed"
    assert missing["error"]["code"] == "no_face" and "2 faces" in missing["error"]["message"]
