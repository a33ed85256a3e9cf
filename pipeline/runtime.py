"""The loaded backends of a worker process: one instance per (stage, backend name), loaded once.

A stage may serve several backends in one worker (the TTS stage routes Chinese
to a Mandarin backend and English to Piper): ``settings.<stage>.backend_names()``
lists them, the first being the default. ``warm_up`` runs in
``worker_process_init`` (after the fork, so no model or CUDA state is shared
with the parent; ``pipeline.launch`` connects it to ``worker_init`` for the
``solo`` and ``threads`` pools), loads every backend of the stages named in
``TALKFARM_WORKER_STAGES`` and publishes the stages' offers
(``pipeline.catalog``). ``loaded`` returns the same loaded instance to every
task of that process, typed by the registry it comes from.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import lru_cache
from typing import TypeVar

from celery.signals import worker_process_init

from contracts.catalog import StageOffer
from contracts.settings import get_settings
from pipeline.catalog import OfferPublisher, StageCatalog
from pipeline.exposition import mark_ready
from pipeline.metrics import MODEL_LOAD_SECONDS
from pipeline.registry import ModelLifecycle, Registry
from pipeline.stages import STAGES

log = logging.getLogger(__name__)
B = TypeVar("B", bound=ModelLifecycle)
_instances: dict[tuple[str, str], ModelLifecycle] = {}
_lock = threading.Lock()


def loaded(registry: Registry[B], name: str | None = None) -> B:
    """The loaded backend ``name`` of the registry's stage (None: the one settings name), loaded on first use."""
    settings = get_settings()
    name = name or settings.stage(registry.stage).backend
    with _lock:
        backend = _instances.get((registry.stage, name))
        if backend is None:
            backend = registry.create(name, settings)
            _instances[(registry.stage, name)] = backend
    backend.load()
    return backend  # type: ignore[return-value]  # created by this registry: a B


def unload_all() -> None:
    with _lock:
        for backend in _instances.values():
            backend.unload()
        _instances.clear()


@lru_cache(maxsize=1)
def offers() -> OfferPublisher:
    """This process's publisher of its stages' offers."""
    return OfferPublisher(StageCatalog.from_settings(get_settings()))


def own_offer(stage: str) -> StageOffer | None:
    """The offer this process published for ``stage`` (None before ``warm_up``)."""
    return offers().own(stage)


def worker_stages() -> list[str]:
    return [s for s in os.environ.get("TALKFARM_WORKER_STAGES", "").split(",") if s]


@worker_process_init.connect
def warm_up(**_: object) -> None:
    settings = get_settings()
    for stage in worker_stages():
        spec = STAGES[stage]
        registry = spec.registry()
        for name in settings.stage(stage).backend_names():
            log.info("loading the %s backend %s", stage, name)
            started = time.perf_counter()
            loaded(registry, name)
            MODEL_LOAD_SECONDS.labels(stage, name).observe(time.perf_counter() - started)
        offers().publish(spec.offer(settings))
    mark_ready()
