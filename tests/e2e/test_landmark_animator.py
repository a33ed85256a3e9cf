"""The landmark animator on a real portrait with the real dlib models.

The speech is synthetic: a second of tone bursts, a second of silence, a second
of a voiced, syllable-like signal. The mouth must move while there is sound and
stay still in the silence; the picture away from the face must not change.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from contracts.errors import PermanentError
from contracts.settings import Settings
from workers.animation.backends.landmark import LandmarkAnimator
from workers.animation.base import RenderRequest, RenderResult
from workers.animation.landmark.face_rig import FaceRig
from workers.animation.portrait import FaceModels, PreparedPortrait, prepare_portrait
from workers.animation.prepare import landmark_model_path

pytestmark = pytest.mark.e2e

PORTRAIT = Path(__file__).resolve().parents[1] / "data" / "portrait.png"
RATE = 24000
FPS = 25


def _bursts(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0.0, None)
    tone = np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 450 * t) + 0.2 * rng.standard_normal(len(t))
    return 0.5 * envelope * tone


def _speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    syllables = np.abs(np.sin(np.pi * np.cumsum(rng.uniform(3, 6, len(t))) / RATE)) ** 1.5
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    return 0.4 * syllables * (voiced + 0.3 * rng.standard_normal(len(t)))


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def animator(settings: Settings) -> LandmarkAnimator:
    backend = LandmarkAnimator(settings)
    backend.check()
    backend.load()
    return backend


@pytest.fixture(scope="module")
def portrait() -> PreparedPortrait:
    return prepare_portrait(PORTRAIT.read_bytes(), 512, FaceModels(landmark_model_path()))


@pytest.fixture(scope="module")
def rendered(
    animator: LandmarkAnimator, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RenderResult, list]:
    rng = np.random.default_rng(7)
    audio = np.concatenate(
        [_bursts(1.0, rng), np.zeros(RATE), _speech_like(1.0, rng)]
    ).astype(np.float32)
    output = tmp_path_factory.mktemp("render") / "talk.mp4"
    result = animator.render(
        RenderRequest(portrait=PORTRAIT.read_bytes(), audio=audio, sample_rate=RATE, output=output)
    )
    with av.open(str(output)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    return result, frames


def _mouth_box(marks: np.ndarray) -> tuple[slice, slice]:
    x0, y0 = marks[48:68].min(axis=0)
    x1, y1 = marks[48:68].max(axis=0)
    drop = 0.15 * float(marks[8, 1] - marks[27, 1])  # room for the jaw's travel
    return slice(int(y0) - 3, int(y1 + drop) + 1), slice(int(x0) - 3, int(x1) + 4)


def _outside_face(marks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """True away from the face: the landmark box grown well beyond the animator's work area."""
    x0, y0 = marks.min(axis=0)
    x1, y1 = marks.max(axis=0)
    w, h = x1 - x0, y1 - y0
    mask = np.ones(shape[:2], bool)
    mask[max(0, int(y0 - 0.8 * h)):int(y1 + 0.5 * h), max(0, int(x0 - 0.5 * w)):int(x1 + 0.5 * w)] = False
    return mask


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_result_matches_the_video(rendered: tuple[RenderResult, list], portrait: PreparedPortrait) -> None:
    result, frames = rendered
    assert result.frames == len(frames) == 3 * FPS
    assert (result.width, result.height) == (portrait.width, portrait.height)
    assert result.seconds == pytest.approx(3.0)
    assert frames[0].shape == portrait.image.shape


def test_mouth_moves_with_sound_and_rests_in_silence(
    rendered: tuple[RenderResult, list], portrait: PreparedPortrait
) -> None:
    _, frames = rendered
    box = _mouth_box(portrait.landmarks)
    steps = [_diff(frames[i + 1][box], frames[i][box]) for i in range(len(frames) - 1)]
    bursts, silence, speech = steps[0:24], steps[30:48], steps[50:74]
    assert np.mean(bursts) > 3.0 and max(bursts) > 8.0
    assert np.mean(speech) > 3.0 and max(speech) > 8.0
    assert max(silence) < 1.0  # only the codec and a sub-pixel head drift


def test_area_away_from_the_face_is_unchanged(
    rendered: tuple[RenderResult, list], portrait: PreparedPortrait
) -> None:
    _, frames = rendered
    outside = _outside_face(portrait.landmarks, portrait.image.shape)
    for frame in frames:
        assert _diff(frame[outside], frames[0][outside]) < 2.5  # H.264 noise only
        assert _diff(frame[outside], portrait.image[outside]) < 4.5


def _lips_to_chin(marks: np.ndarray) -> tuple[slice, slice]:
    """From the base of the nose down to the chin, between the jaw points beside the mouth: where closing
    the photo's parted lips may change pixels (the lips' triangles reach the nose and the jaw line)."""
    top = int(marks[31:36, 1].min()) - 2
    bottom = int(np.ceil(marks[8, 1])) + 2
    return slice(top, bottom), slice(int(marks[4, 0]) - 2, int(np.ceil(marks[12, 0])) + 3)


def test_neutral_pose_closes_the_lips_and_nothing_else(portrait: PreparedPortrait) -> None:
    rig = FaceRig(portrait)
    still = rig.frame(0.0, 0.0, 0.0, np.zeros(2, np.float32)).copy()
    pose = rig.pose(0.0, 0.0, 0.0, np.zeros(2, np.float32))
    gaps = [float((pose[low] - pose[up]) @ rig.down) for up, low in ((61, 67), (62, 66), (63, 65))]
    photo_gaps = [float(portrait.landmarks[low, 1] - portrait.landmarks[up, 1]) for up, low in ((61, 67), (62, 66))]
    assert min(photo_gaps) > 4.0, "this photo's lips are parted"
    assert max(abs(g) for g in gaps) < 1e-3, "the neutral pose must bring the inner lips together"
    changed = np.any(still != portrait.image, axis=2)
    allowed = np.zeros_like(changed)
    allowed[_lips_to_chin(portrait.landmarks)] = True
    assert changed.any() and not (changed & ~allowed).any()


def test_rig_changes_only_its_region_pixel_for_pixel(portrait: PreparedPortrait) -> None:
    rig = FaceRig(portrait)
    x0, y0, x1, y1 = rig.roi

    talking = rig.frame(0.8, 0.3, 1.0, np.array([0.6, -0.3], np.float32)).copy()
    outside = np.ones(portrait.image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(talking[outside], portrait.image[outside])
    box = _mouth_box(portrait.landmarks)
    assert _diff(talking[box], portrait.image[box]) > 10.0

    # The mouth alone: the eyes and everything above them stay exactly as in the photo.
    mouth_only = rig.frame(1.0, 0.0, 0.0, np.zeros(2, np.float32))
    eyes = int(np.ceil(portrait.landmarks[36:48, 1].max())) + 1
    assert np.array_equal(mouth_only[:eyes], portrait.image[:eyes])


def test_no_seam_at_the_warp_boundary(portrait: PreparedPortrait) -> None:
    rig = FaceRig(portrait)
    x0, y0, x1, y1 = rig.roi
    frame = rig.frame(1.0, 0.8, 1.0, np.array([0.5, -0.3], np.float32)).copy()
    # The warp fades to nothing at the region's border: a band just inside it matches the photo,
    # which continues unchanged outside.
    band = np.zeros(portrait.image.shape[:2], bool)
    band[y0:y1, x0:x1] = True
    band[y0 + 3:y1 - 3, x0 + 3:x1 - 3] = False
    assert _diff(frame[band], portrait.image[band]) < 0.5
    # Inside, no edge appears that the photo does not have: the largest jump between neighbouring
    # pixels in the warped region is no larger than the photo's own there.

    def jumps(image: np.ndarray) -> float:
        gray = image[y0:y1, x0:x1].astype(np.int16).mean(axis=2)
        return float(max(np.abs(np.diff(gray, axis=0)).max(), np.abs(np.diff(gray, axis=1)).max()))
    assert jumps(frame) <= jumps(portrait.image) + 10


def test_photo_without_a_face_is_refused(animator: LandmarkAnimator, tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    noise = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for image in (cv2.merge([gradient, gradient[:, ::-1], gradient]), noise):
        ok, png = cv2.imencode(".png", image)
        assert ok
        with pytest.raises(PermanentError) as caught:
            animator.render(RenderRequest(portrait=png.tobytes(), audio=np.zeros(RATE, np.float32),
                                          sample_rate=RATE, output=tmp_path / "none.mp4"))
        assert caught.value.code == "no_face"
        assert "face" in caught.value.message
    assert not (tmp_path / "none.mp4").exists()


def test_garbage_bytes_are_a_bad_image(animator: LandmarkAnimator, tmp_path: Path) -> None:
    for data in (b"", b"this is not an image", b"\x89PNG\r\n\x1a\n" + bytes(100)):
        with pytest.raises(PermanentError) as caught:
            animator.render(RenderRequest(portrait=data, audio=np.zeros(RATE, np.float32),
                                          sample_rate=RATE, output=tmp_path / "bad.mp4"))
        assert caught.value.code == "bad_image"


def test_large_gray_and_transparent_portraits_are_prepared(portrait: PreparedPortrait) -> None:
    models = FaceModels(landmark_model_path())
    image = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    assert image is not None
    large = cv2.resize(image, (1025, 1023), interpolation=cv2.INTER_CUBIC)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    rgba[:40, :, 3] = 0  # a transparent band at the top
    for source in (large, gray, rgba):
        ok, png = cv2.imencode(".png", source)
        assert ok
        prepared = prepare_portrait(png.tobytes(), 512, models)
        assert prepared.image.ndim == 3 and prepared.image.shape[2] == 3
        assert max(prepared.width, prepared.height) <= 512
        assert prepared.width % 2 == 0 and prepared.height % 2 == 0
        assert prepared.landmarks.shape == (68, 2) and prepared.landmarks.dtype == np.float32
        # The same face is found in every variant.
        assert np.abs(prepared.landmarks.mean(axis=0) - portrait.landmarks.mean(axis=0)).max() < 6.0


def test_exif_orientation_is_applied(portrait: PreparedPortrait) -> None:
    image = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    assert image is not None
    ok, jpeg = cv2.imencode(".jpg", cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE))
    assert ok
    # A minimal EXIF block: orientation 6 means "rotate 90 degrees clockwise to display".
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">HHHIHHI", 1, 0x0112, 3, 1, 6, 0, 0)
    payload = b"Exif\x00\x00" + tiff
    data = jpeg.tobytes()
    data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]
    prepared = prepare_portrait(data, 512, FaceModels(landmark_model_path()))
    assert prepared.image.shape == portrait.image.shape
    assert np.abs(prepared.landmarks - portrait.landmarks).max() < 4.0
