"""The loaded backends of a worker process: one instance per (stage, backend name), loaded once.

A stage may serve several backends in one worker (the TTS stage routes Chinese
to a Mandarin backend and English to Piper): ``settings.<stage>.backend_names()``
lists them, the first being the default. ``warm_up`` runs in
``worker_process_init`` (after the fork, so no model or CUDA state is shared
with the parent) and loads every backend of the stages named in
``TALKFARM_WORKER_STAGES``; ``backend_for`` returns the same loaded instance to
every task of that process.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

from celery.signals import worker_process_init

from workers import health
from workers.settings import get_settings

log = logging.getLogger(__name__)
_instances: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def backend_for(stage: str, name: str | None = None) -> Any:
    """The loaded backend ``name`` of ``stage`` (None: the one settings name), created and loaded on first use."""
    settings = get_settings()
    name = name or settings.stage(stage).backend
    with _lock:
        backend = _instances.get((stage, name))
        if backend is None:
            registry = importlib.import_module(f"workers.{stage}.base").registry
            backend = registry.create(name, settings)
            _instances[(stage, name)] = backend
    backend.load()
    return backend


def unload_all() -> None:
    with _lock:
        for backend in _instances.values():
            backend.unload()
        _instances.clear()


def worker_stages() -> list[str]:
    return [s for s in os.environ.get("TALKFARM_WORKER_STAGES", "").split(",") if s]


@worker_process_init.connect
def warm_up(**_: object) -> None:
    settings = get_settings()
    for stage in worker_stages():
        for name in settings.stage(stage).backend_names():
            log.info("loading the %s backend %s", stage, name)
            backend_for(stage, name)
    health.mark_loaded(worker_stages())
