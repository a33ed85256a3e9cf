"""Content-addressed artifact store on a folder shared by the coordinator and the workers.

A key is ``<sha256>.<ext>``; the file lives at ``root/ab/cd/<sha256>.<ext>``.
Writes go to a unique temporary file in the same folder and are renamed into
place, so two jobs writing the same content never see a half-written file and
two jobs writing different content never touch each other's files. Stored files
are never modified, which is what makes stage outputs idempotent.

Beside the content folders live ``tmp/`` (tasks' private scratch folders) and
``prepared/`` (the animation stage's prepared portraits); the coordinator's
retention task prunes all three (``stored``, ``leftovers``, ``prepared_dir``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

_KEY = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,8}$")
_CHUNK = 1 << 20


_Filler = Callable[[BinaryIO], object]


SCRATCH = "tmp"
PREPARED = "prepared"


@dataclass(frozen=True)
class StoredFile:
    key: str
    path: Path
    size: int
    mtime: float


class ArtifactNotFound(KeyError):
    pass


@dataclass(frozen=True)
class Artifact:
    key: str
    size: int


def is_key(key: str) -> bool:
    return bool(_KEY.match(key))


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not is_key(key):
            raise ValueError(f"not an artifact key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise ArtifactNotFound(key) from None

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    @staticmethod
    def key_of(data: bytes, ext: str) -> str:
        """The key ``data`` is (or would be) stored under."""
        return f"{hashlib.sha256(data).hexdigest()}.{ext}"

    def put_bytes(self, data: bytes, ext: str) -> Artifact:
        key = self.key_of(data, ext)
        target = self.path(key)
        if not target.exists():
            self._write(target, lambda f: f.write(data))
        return Artifact(key, len(data))

    def put_file(self, source: Path, ext: str) -> Artifact:
        """Store a file's content (copied, the source is left alone)."""
        digest = hashlib.sha256()
        size = 0
        with Path(source).open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        key = f"{digest.hexdigest()}.{ext}"
        target = self.path(key)
        if not target.exists():
            def copy(out: BinaryIO) -> None:
                with Path(source).open("rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            self._write(target, copy)
        return Artifact(key, size)

    def scratch_dir(self) -> tempfile.TemporaryDirectory[str]:
        """A private folder for a task's intermediate files, removed when done."""
        tmp = self.root / SCRATCH
        tmp.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=tmp)

    @property
    def prepared_dir(self) -> Path:
        """Where the animation stage keeps prepared portraits (a cache: any file may go).

        A portrait's files are ``<digest[:2]>/<digest>-*`` there, ``digest`` its key's SHA-256.
        """
        return self.root / PREPARED

    def prepared_files(self, key: str) -> list[Path]:
        """The prepared-portrait files of the portrait ``key``."""
        digest = key.split(".", 1)[0]
        return sorted((self.prepared_dir / digest[:2]).glob(f"{digest}-*"))

    def stored(self) -> Iterator[StoredFile]:
        """Every stored artifact file."""
        for first in self._content_folders():
            for second in first.iterdir():
                for path in second.iterdir():
                    if is_key(path.name):
                        stat = path.stat()
                        yield StoredFile(path.name, path, stat.st_size, stat.st_mtime)

    def leftovers(self) -> Iterator[tuple[Path, float]]:
        """What killed writers leave: ``.partial-*`` files and scratch folders, with their modification times."""
        for first in self._content_folders():
            for path in first.glob("*/.partial-*"):
                yield path, path.stat().st_mtime
        scratch = self.root / SCRATCH
        if scratch.is_dir():
            for path in scratch.iterdir():
                yield path, path.stat().st_mtime

    def remove(self, key: str) -> bool:
        """Delete a stored artifact; False when it was not there."""
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def _content_folders(self) -> Iterator[Path]:
        if self.root.is_dir():
            for path in self.root.iterdir():
                if len(path.name) == 2 and path.is_dir():
                    yield path

    def _write(self, target: Path, fill: _Filler) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file in the same folder and a rename, readable
    by all: a reader never sees a partial file (used to install prepared model files)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; workers may run as another user
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
