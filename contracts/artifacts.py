"""Content-addressed artifact store on a folder shared by the coordinator and the workers.

A key is ``<sha256>.<ext>``; the file lives at ``root/ab/cd/<sha256>.<ext>``.
Writes go to a unique temporary file in the same folder and are renamed into
place, so two jobs writing the same content never see a half-written file and
two jobs writing different content never touch each other's files. Stored files
are never modified, which is what makes stage outputs idempotent.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

_KEY = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,8}$")
_CHUNK = 1 << 20


_Filler = Callable[[BinaryIO], object]


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

    def put_bytes(self, data: bytes, ext: str) -> Artifact:
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
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
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=tmp)

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
