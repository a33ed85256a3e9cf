"""One backend instance per stage per worker process, loaded once.

``warm_up`` runs in ``worker_process_init`` (after the fork, so no model or CUDA
state is shared with the parent) for the stages named in
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

from workers.settings import get_settings

log = logging.getLogger(__name__)
_instances: dict[str, Any] = {}
_lock = threading.Lock()


def backend_for(stage: str) -> Any:
    """The loaded backend that settings name for ``stage`` (created and loaded on first use)."""
    with _lock:
        backend = _instances.get(stage)
        if backend is None:
            settings = get_settings()
            registry = importlib.import_module(f"workers.{stage}.base").registry
            backend = registry.create(settings.stage(stage).backend, settings)
            _instances[stage] = backend
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
    for stage in worker_stages():
        log.info("loading the %s backend", stage)
        backend_for(stage)
