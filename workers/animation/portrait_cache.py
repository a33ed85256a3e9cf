"""Portrait preparation once per portrait, shared by every animation backend and worker process.

``PortraitPreparer.prepare(data, face_index, portrait_key)`` is the one call a
backend makes: it returns the ``PreparedPortrait`` to animate (image at render
size, the chosen face's box and 68 landmarks) or raises the user-facing
``PermanentError`` (``bad_image``, ``image_too_large``, ``no_face``,
``face_too_small``, ``face_not_frontal``).

The expensive part, decoding at render size and finding every face with its
landmarks (``analyse_portrait``), is cached per portrait content:

* the key is the portrait's SHA-256 (the artifact key's digest, so nothing is
  hashed again when the task passes it), ``PREPARATION_VERSION`` and ``max_side``;
* the entry is an uncompressed ``.npz`` (numpy arrays only, read with
  ``allow_pickle=False``) under ``<artifact_dir>/prepared/``, written to a
  temporary file and renamed into place, so worker processes on the same volume
  share it and never read half a file; an unreadable entry counts as a miss and
  is replaced;
* the last few analyses are also kept in memory, so a session that keeps its
  avatar does not even read the file.

Choosing the face and checking it (size, pose) runs on every call: it is cheap
and follows the current settings, which therefore need no cache invalidation.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from contracts.artifacts import ArtifactStore, is_key
from contracts.settings import Settings
from workers.animation.faces import FaceBox, FaceChecks, FaceModels
from workers.animation.portrait import PortraitAnalysis, PreparedPortrait, analyse_portrait, select_face

log = logging.getLogger(__name__)

# Bump when decoding, scaling, detection or landmarks change what an entry holds.
PREPARATION_VERSION = "2"
MEMORY_ENTRIES = 4


def portrait_digest(data: bytes, portrait_key: str | None = None) -> str:
    """The portrait's SHA-256: taken from its artifact key when given, else computed."""
    if portrait_key is not None and is_key(portrait_key):
        return portrait_key.split(".", 1)[0]
    return hashlib.sha256(data).hexdigest()


class PortraitCache:
    """Portrait analyses as ``.npz`` files in ``directory``, one per (portrait, version, max_side)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, digest: str, max_side: int) -> Path:
        return self.directory / digest[:2] / f"{digest}-v{PREPARATION_VERSION}-{max_side}.npz"

    def load(self, digest: str, max_side: int) -> PortraitAnalysis | None:
        """The stored analysis, or None when there is none or it cannot be read (then it is removed)."""
        path = self.path(digest, max_side)
        try:
            with np.load(path, allow_pickle=False) as stored:
                image, boxes, marks = stored["image"], stored["boxes"], stored["landmarks"]
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            self._discard(path, f"unreadable ({e})")
            return None
        if (image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or marks.ndim != 3
                or marks.shape[1:] != (68, 2) or boxes.shape != (len(marks), 4)):
            self._discard(path, "holding unexpected arrays")
            return None
        return PortraitAnalysis(
            image=np.ascontiguousarray(image),
            boxes=tuple(FaceBox(*(int(v) for v in row)) for row in boxes),
            landmarks=marks.astype(np.float32),
        )

    @staticmethod
    def _discard(path: Path, why: str) -> None:
        log.warning("prepared portrait %s is %s; preparing it again", path, why)
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)

    def store(self, digest: str, max_side: int, analysis: PortraitAnalysis) -> None:
        """Write the entry atomically; a failing volume only costs the next job a preparation."""
        path = self.path(digest, max_side)
        boxes = np.array([(b.left, b.top, b.right, b.bottom) for b in analysis.boxes], np.int32).reshape(-1, 4)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, image=analysis.image, boxes=boxes, landmarks=analysis.landmarks)
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, path)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        except OSError as e:
            log.warning("could not store the prepared portrait %s: %s", path, e)


class PortraitPreparer:
    """Prepares portraits for animation, each portrait analysed once (see the module docstring)."""

    def __init__(self, models: FaceModels, max_side: int, checks: FaceChecks = FaceChecks(),
                 cache: PortraitCache | None = None, max_pixels: int | None = None,
                 memory_entries: int = MEMORY_ENTRIES) -> None:
        self.models = models
        self.max_side = max_side
        self.checks = checks
        self.cache = cache
        self.max_pixels = max_pixels
        self.memory_entries = memory_entries
        self.hits = 0  # analyses served from memory or the cache folder
        self.misses = 0  # analyses computed
        self._memory: OrderedDict[str, PortraitAnalysis] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, models: FaceModels) -> PortraitPreparer:
        animation = settings.animation
        return cls(models, animation.max_side, FaceChecks(min_face_px=animation.min_face_px),
                   PortraitCache(ArtifactStore(settings.artifact_dir).prepared_dir), settings.limits.max_image_pixels)

    def prepare(self, data: bytes, face_index: int = 0, portrait_key: str | None = None) -> PreparedPortrait:
        """The portrait's face ``face_index`` (0 is the largest), ready to animate.

        ``portrait_key`` is the portrait's artifact key when the caller has it
        (it saves hashing the bytes). Raises ``PermanentError`` for unusable portraits.
        """
        return select_face(self.analyse(data, portrait_key), face_index, self.checks)

    def analyse(self, data: bytes, portrait_key: str | None = None) -> PortraitAnalysis:
        """The portrait at render size with every face, from memory, the cache folder or computed."""
        digest = portrait_digest(data, portrait_key)
        with self._lock:
            found = self._memory.get(digest)
            if found is not None:
                self._memory.move_to_end(digest)
                self.hits += 1
                return found
        analysis = self.cache.load(digest, self.max_side) if self.cache is not None else None
        if analysis is None:
            analysis = analyse_portrait(data, self.max_side, self.models, self.max_pixels)
            if self.cache is not None:
                self.cache.store(digest, self.max_side, analysis)
            with self._lock:
                self.misses += 1
        else:
            with self._lock:
                self.hits += 1
        with self._lock:
            if self.memory_entries > 0:
                self._memory[digest] = analysis
                while len(self._memory) > self.memory_entries:
                    self._memory.popitem(last=False)
        return analysis
