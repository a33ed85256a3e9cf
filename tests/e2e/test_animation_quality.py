"""Does the landmark animator look like the person in the photo speaking? Measured the way a viewer sees it.

The repo portrait speaks four sentences of Piper speech (the farm's TTS backend),
with pauses between them, once for each source of mouth shapes: the TTS stage's
phoneme timings (speak and chat modes), the text aligned to the audio, and the
audio alone (lipsync mode). dlib then re-detects the 68 landmarks on every frame of
the decoded video, and:

(a) the inner-lip gap follows the speech: its Pearson correlation with the audio's
    loudness envelope (RMS over each frame's 40 ms) is at least 0.6;
(b) in every silent stretch of at least 300 ms (RMS under 2 % of the loudest frame)
    the mouth is closed in at least 90 % of the frames. "Closed" means an inner-lip
    gap under 6 % of the distance between the eye centres, a third of this photo's
    own gap (its smile shows the teeth: about 16 %), so the neutral pose must really
    close the lips;
(c) the person stays the same: in every frame, SSIM with the portrait over the head
    (the landmark box grown by a quarter sideways and half upwards) outside the mouth
    and jaw (the hull of jaw line and lips, grown by 12 % of the face width) is at
    least 0.9;
(d) the eyes blink at least once per 10 s: dips of the eye aspect ratio below 70 % of
    its median.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media import (
    FaceTracker,
    bgr_frames,
    count_dips,
    eye_aspect_ratio,
    eye_distance,
    face_box,
    head_mask,
    inner_lip_gap,
    loudness_envelope,
    mouth_and_jaw_mask,
    silent_runs,
    ssim_map,
)
from workers.animation.backends.landmark import LandmarkAnimator
from workers.animation.base import RenderRequest
from workers.tts.base import Speech, Timing

pytestmark = pytest.mark.e2e

PORTRAIT = Path(__file__).resolve().parents[1] / "data" / "portrait.png"
FPS = 25
SENTENCES = (
    "Hello there, and welcome back to the space station.",
    "Today we will look at the moon, the planets and a few bright stars.",
    "My mission begins in the morning, so please be patient with me.",
    "Thank you for listening, and have a wonderful evening.",
)
PAUSES_S = (0.4, 0.6, 0.8, 0.5, 0.5)  # before, between and after the sentences
CLOSED_GAP = 0.06  # inner-lip gap / eye-centre distance below which the mouth counts as closed
SILENT = 0.02  # RMS share of the loudest frame below which a frame counts as silent
MIN_SILENCE_S = 0.3


@pytest.fixture(scope="module")
def speech(model_settings) -> tuple[Speech, str]:
    """The sentences spoken one by one and joined with pauses; timings shifted to match."""
    from workers.tts.base import registry

    tts = registry.create("piper", model_settings)
    rate = model_settings.tts.sample_rate
    parts, timings, cursor = [], [], 0.0
    for pause, sentence in zip(PAUSES_S, SENTENCES):
        spoken = tts.synthesize(sentence)
        assert spoken.sample_rate == rate and spoken.timings
        parts += [np.zeros(int(pause * rate), np.float32), spoken.samples]
        cursor += int(pause * rate) / rate
        timings += [Timing(t.start + cursor, t.end + cursor, t.label, t.kind) for t in spoken.timings]
        cursor += len(spoken.samples) / rate
    parts.append(np.zeros(int(PAUSES_S[-1] * rate), np.float32))
    samples = np.concatenate(parts)
    return Speech(samples, rate, tuple(timings), timings_from_model=True), " ".join(SENTENCES)


@pytest.fixture(scope="module")
def animator(model_settings) -> LandmarkAnimator:
    backend = LandmarkAnimator(model_settings)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker()


@pytest.fixture(scope="module")
def photo(tracker: FaceTracker) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    marks = tracker.landmarks(image)
    assert marks is not None
    return image, marks


@pytest.fixture(scope="module", params=["timings", "text", "audio"])
def measured(request: pytest.FixtureRequest, speech: tuple[Speech, str], animator: LandmarkAnimator,
             tracker: FaceTracker, photo: tuple[np.ndarray, np.ndarray],
             tmp_path_factory: pytest.TempPathFactory) -> dict:
    spoken, text = speech
    source = request.param
    extra: dict = {"timings": spoken.timings, "text": text} if source == "timings" else (
        {"text": text} if source == "text" else {})
    output = tmp_path_factory.mktemp(f"quality-{source}") / "talk.mp4"
    animator.render(RenderRequest(portrait=PORTRAIT.read_bytes(), audio=spoken.samples,
                                  sample_rate=spoken.sample_rate, output=output, **extra))
    frames = bgr_frames(output)
    image, marks = photo
    found = tracker.track(frames, face_box(marks))
    return {"source": source, "frames": frames, "marks": found, "photo": image, "photo_marks": marks,
            "loudness": loudness_envelope(spoken.samples, spoken.sample_rate, FPS, len(frames))}


def _gaps(measured: dict) -> np.ndarray:
    return np.array([inner_lip_gap(m) / eye_distance(m) if m is not None else np.nan for m in measured["marks"]])


def test_the_face_is_found_in_every_frame(measured: dict) -> None:
    found = sum(m is not None for m in measured["marks"])
    assert found >= 0.98 * len(measured["frames"]), f"{measured['source']}: face found in {found} frames"


def test_lip_gap_follows_the_loudness(measured: dict) -> None:
    gaps, loud = _gaps(measured), measured["loudness"]
    ok = ~np.isnan(gaps)
    r = float(np.corrcoef(gaps[ok], loud[ok])[0, 1])
    assert r >= 0.6, f"{measured['source']}: Pearson r = {r:.3f}"


def test_mouth_is_closed_in_silence(measured: dict) -> None:
    photo_gap = inner_lip_gap(measured["photo_marks"]) / eye_distance(measured["photo_marks"])
    assert photo_gap > 2 * CLOSED_GAP, "the test needs a photo whose lips are parted"
    gaps, loud = _gaps(measured), measured["loudness"]
    runs = silent_runs(loud, SILENT * loud.max(), min_frames=math.ceil(MIN_SILENCE_S * FPS))
    assert len(runs) >= len(PAUSES_S) - 1, f"only {len(runs)} silent stretches found"
    silent = np.concatenate([np.arange(run.start, run.stop) for run in runs])
    closed = np.nan_to_num(gaps[silent], nan=np.inf) < CLOSED_GAP
    assert closed.mean() >= 0.9, (
        f"{measured['source']}: closed in {closed.mean():.0%} of {len(silent)} silent frames; "
        f"gaps {np.round(gaps[silent], 3).tolist()}"
    )


def test_the_person_stays_the_same(measured: dict) -> None:
    image, marks = measured["photo"], measured["photo_marks"]
    region = head_mask(marks, image.shape) & ~mouth_and_jaw_mask(marks, image.shape)
    reference = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scores = [float(ssim_map(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), reference)[region].mean())
              for f in measured["frames"]]
    assert min(scores) >= 0.9, f"{measured['source']}: SSIM down to {min(scores):.3f} (frame {int(np.argmin(scores))})"


def test_the_eyes_blink(measured: dict) -> None:
    ratios = np.array([eye_aspect_ratio(m) if m is not None else np.nan for m in measured["marks"]])
    seconds = len(ratios) / FPS
    assert seconds >= 10.0, "the clip must be long enough to expect a blink"
    blinks = count_dips(ratios, 0.7 * float(np.nanmedian(ratios)))
    assert blinks >= math.floor(seconds / 10.0), f"{measured['source']}: {blinks} blinks in {seconds:.1f} s"
