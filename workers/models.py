"""Preparing the embedded models offline (``talkfarm-admin models prepare``).

Each stage has ``workers/<stage>/prepare.py`` with ``prepare(settings, force)``:
joining the split Whisper file, converting the SmolLM2 GGUF to safetensors once,
copying the Piper voice, locating the dlib landmark model. Results go under
``TALKFARM_MODEL_DIR`` (default ``~/.cache/talkfarm/models``).
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Iterable

from workers.payload import STAGES
from workers.settings import Settings

log = logging.getLogger(__name__)


def prepare_models(settings: Settings, stages: Iterable[str] = STAGES, force: bool = False) -> dict[str, list[Path]]:
    prepared: dict[str, list[Path]] = {}
    for stage in stages:
        start = time.perf_counter()
        module = importlib.import_module(f"workers.{stage}.prepare")
        prepared[stage] = module.prepare(settings, force=force)
        log.info("%s models ready in %.1f s", stage, time.perf_counter() - start)
    return prepared
