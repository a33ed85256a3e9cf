"""The portrait preparation cache: one analysis per portrait, shared by preparers and processes.

The face models are a fake that counts its calls (finding faces is what the cache
saves); decoding, the cache files and face selection are the real code.
"""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contracts.errors import PermanentError
from tests.unit.test_animation_faces import FRONTAL
from workers.animation.faces import FaceBox, FaceChecks
from workers.animation.portrait import PortraitAnalysis
from workers.animation.portrait_cache import PREPARATION_VERSION, PortraitCache, PortraitPreparer, portrait_digest

pytestmark = pytest.mark.unit


class CountingFaces:
    """Stands in for ``FaceModels``: ``faces`` copies of a frontal face, side by side, largest first."""

    def __init__(self, faces: int = 1) -> None:
        self.faces = faces
        self.detections = 0

    def detect(self, rgb: np.ndarray, upsample: int) -> list[FaceBox]:
        self.detections += 1
        boxes = [FaceBox(5 + 110 * i, 10, 5 + 110 * i + 100 - 10 * i, 110 - 10 * i) for i in range(self.faces)]
        return boxes[::-1]  # the detector's order is not by size

    def landmarks(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        shape = (FRONTAL - FRONTAL.min(axis=0)) / np.ptp(FRONTAL, axis=0)
        return (shape * (box.width, box.height) + (box.left, box.top)).astype(np.float32)


def _png(seed: int = 0, size: int = 256) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _preparer(tmp_path: Path, faces: CountingFaces, max_side: int = 512, memory: int = 0) -> PortraitPreparer:
    return PortraitPreparer(faces, max_side, FaceChecks(min_face_px=32),  # type: ignore[arg-type]
                            PortraitCache(tmp_path), memory_entries=memory)


def test_second_preparation_of_a_photo_reads_the_cache(tmp_path: Path) -> None:
    data = _png()
    faces = CountingFaces()
    first = _preparer(tmp_path, faces).prepare(data)
    assert faces.detections == 1
    # A new preparer (another job, another worker process) finds the stored analysis.
    again = _preparer(tmp_path, faces)
    second = again.prepare(data)
    assert faces.detections == 1 and (again.hits, again.misses) == (1, 0)
    assert np.array_equal(first.image, second.image) and np.array_equal(first.landmarks, second.landmarks)
    assert first.box == second.box and second.face_count == 1
    # Another photo, or another render size, is prepared on its own.
    _preparer(tmp_path, faces).prepare(_png(seed=1))
    _preparer(tmp_path, faces, max_side=128).prepare(data)
    assert faces.detections == 3


def test_entries_are_keyed_by_content_version_and_size_and_hold_plain_arrays(tmp_path: Path) -> None:
    data = _png()
    digest = portrait_digest(data)
    assert portrait_digest(data, f"{digest}.png") == digest  # the artifact key saves the hashing
    assert portrait_digest(data, "not-a-key") == digest
    _preparer(tmp_path, CountingFaces()).prepare(data, portrait_key=f"{digest}.png")
    path = PortraitCache(tmp_path).path(digest, 512)
    assert path.is_file() and f"-v{PREPARATION_VERSION}-512" in path.name
    with np.load(path, allow_pickle=False) as stored:  # no pickled objects in it
        assert sorted(stored.files) == ["boxes", "image", "landmarks"]
        assert stored["image"].dtype == np.uint8 and stored["landmarks"].shape == (1, 68, 2)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".partial-")]


def test_memory_keeps_the_last_few_analyses(tmp_path: Path) -> None:
    faces = CountingFaces()
    preparer = _preparer(tmp_path, faces, memory=2)
    photos = [_png(seed) for seed in range(3)]
    for data in photos + photos[1:]:
        preparer.prepare(data)
    assert faces.detections == 3 and preparer.hits == 2
    PortraitCache(tmp_path).path(portrait_digest(photos[2]), 512).unlink()
    preparer.prepare(photos[2])  # still in memory: the file is not needed
    assert faces.detections == 3


def test_an_unreadable_entry_is_prepared_again(tmp_path: Path) -> None:
    data = _png()
    faces = CountingFaces()
    _preparer(tmp_path, faces).prepare(data)
    path = PortraitCache(tmp_path).path(portrait_digest(data), 512)
    for broken in (b"garbage", path.read_bytes()[:1000]):
        path.write_bytes(broken)
        assert PortraitCache(tmp_path).load(portrait_digest(data), 512) is None
        assert not path.exists()
        _preparer(tmp_path, faces).prepare(data)
    assert faces.detections == 3
    with path.open("wb") as f:  # readable, but not an analysis
        np.savez(f, image=np.zeros((4, 4), np.float32), boxes=np.zeros((0, 4)), landmarks=np.zeros((0, 68, 2)))
    assert PortraitCache(tmp_path).load(portrait_digest(data), 512) is None


def test_a_read_only_cache_folder_only_costs_the_caching(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    faces = CountingFaces()
    preparer = PortraitPreparer(faces, 512, FaceChecks(min_face_px=32),  # type: ignore[arg-type]
                                PortraitCache(blocked), memory_entries=0)
    assert preparer.prepare(_png()).face_count == 1
    assert preparer.prepare(_png()).face_count == 1
    assert faces.detections == 2


def test_faces_are_chosen_by_index_largest_first(tmp_path: Path) -> None:
    faces = CountingFaces(faces=3)
    preparer = _preparer(tmp_path, faces)
    chosen = [preparer.prepare(_png(), face_index=i) for i in range(3)]
    assert [p.face_index for p in chosen] == [0, 1, 2] and all(p.face_count == 3 for p in chosen)
    areas = [p.box.area for p in chosen]
    assert areas == sorted(areas, reverse=True)
    assert faces.detections == 1  # one analysis serves every face
    with pytest.raises(PermanentError) as caught:
        preparer.prepare(_png(), face_index=3)
    assert caught.value.code == "no_face" and "3 faces" in caught.value.message


def test_no_face_and_a_small_face_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        _preparer(tmp_path, CountingFaces(faces=0)).prepare(_png())
    assert caught.value.code == "no_face"
    small = PortraitPreparer(CountingFaces(), 512, FaceChecks(min_face_px=200),  # type: ignore[arg-type]
                             PortraitCache(tmp_path / "small"))
    with pytest.raises(PermanentError) as caught:
        small.prepare(_png())
    assert caught.value.code == "face_too_small"


def _prepare_in_process(folder: str, data: bytes) -> tuple[int, int]:
    preparer = _preparer(Path(folder), CountingFaces())
    prepared = preparer.prepare(data)
    return prepared.width, preparer.misses


def test_processes_preparing_the_same_photo_at_once_leave_one_good_entry(tmp_path: Path) -> None:
    data = _png(size=384)
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        results = pool.starmap(_prepare_in_process, [(str(tmp_path), data)] * 8)
    assert {width for width, _ in results} == {384}
    analysis = PortraitCache(tmp_path).load(portrait_digest(data), 512)
    assert isinstance(analysis, PortraitAnalysis) and analysis.image.shape == (384, 384, 3)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".partial-")]
    assert not leftovers
