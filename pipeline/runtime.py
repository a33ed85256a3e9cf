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

A task killed at its hard time limit in a prefork pool ends without reaching the
runner again; Celery then signals ``task_failure`` in the worker's main process,
where ``report_hard_time_limit`` fails the job with ``stage_timeout``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import lru_cache
from typing import Any, TypeVar

from billiard.exceptions import TimeLimitExceeded
from celery.signals import task_failure, worker_process_init
from pydantic import ValidationError

from contracts.catalog import StageOffer
from contracts.events import JobEvent
from contracts.payload import JobPayload
from contracts.settings import get_settings
from pipeline.catalog import OfferPublisher, StageCatalog
from pipeline.events import publish_event
from pipeline.exposition import mark_ready
from pipeline.markers import mark_loaded
from pipeline.metrics import MODEL_LOAD_SECONDS
from pipeline.registry import ModelLifecycle, Registry
from pipeline.stages import STAGES, StageSpec, spec_of_task

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
    mark_loaded(worker_stages())  # the container healthcheck (pipeline.health) reads it
    mark_ready()


@task_failure.connect
def report_hard_time_limit(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None,
                           args: Any = None, **_: Any) -> None:
    """Fail the job of a task that Celery killed at its hard time limit (no event would say so)."""
    if not isinstance(exception, TimeLimitExceeded) or not args:
        return
    try:
        payload = JobPayload.model_validate(args[0])
        spec = spec_of_task(str(getattr(sender, "name", "")))
    except (ValidationError, KeyError):
        return
    stage = spec.name if isinstance(spec, StageSpec) else spec.verb
    data: dict[str, Any] = {"code": "stage_timeout", "message": f"{stage} ran past its hard time limit"}
    if payload.segment is not None:
        data["segment"] = payload.segment
    try:
        publish_event(JobEvent(job_id=payload.job_id, session_id=payload.session_id, stage=stage, kind="failed",
                               data=data, event_id=f"{task_id}:hard-limit:failed"), get_settings())
    except Exception:  # the deadline sweeper fails the job later
        log.exception("could not report the hard time limit of job %s", payload.job_id)
