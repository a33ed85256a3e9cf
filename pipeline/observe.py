"""Around every stage task in a worker: its log context, its duration and outcome, its queue wait.

Connected to Celery's ``task_prerun`` and ``task_postrun`` signals (``talkfarm-worker``
imports this module), which run in the process and thread that execute the task:

* the job's IDs are bound to the log context (``contracts.logs``) for every line the
  task writes: job, session and trace ID (from the payload's ``traceparent``), a span ID
  of its own, the stage and the segment;
* ``talkfarm_stage_queue_wait_seconds`` from the message's publication stamp
  (``pipeline.stamps``) to the start, for first attempts;
* ``talkfarm_stage_task_seconds`` by stage, task kind (``stage``, ``segment``,
  ``assemble``) and outcome (the runner's ``status``: ``ok``, ``failed``, ``cancelled``,
  ``rejected``; ``retry`` when the task asked for one), and failures by error code.

The payload is read as the raw message (the runner validates it); a task of
another app is left alone.
"""

from __future__ import annotations

import logging
import secrets
import time
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from celery.signals import task_postrun, task_prerun

from contracts.logs import log_context
from contracts.telemetry import Trace
from pipeline.metrics import FAILURES, QUEUE_WAIT, TASK_SECONDS
from pipeline.stages import StageSpec, spec_of_task
from pipeline.stamps import published_at

log = logging.getLogger(__name__)


@dataclass
class _Running:
    stage: str
    kind: str
    started: float
    published: float | None
    context: AbstractContextManager[Any]


_running: dict[str, _Running] = {}
_published: ContextVar[float | None] = ContextVar("talkfarm_published_at", default=None)


def seconds_since_publication() -> float | None:
    """Seconds since the running task's message was published (None outside a stamped task)."""
    published = _published.get()
    return None if published is None else max(0.0, time.time() - published)


def task_kind(spec: object, payload: dict[str, Any]) -> str:
    if not isinstance(spec, StageSpec):
        return "assemble"
    return "segment" if payload.get("segment") is not None else "stage"


@task_prerun.connect(weak=False)
def task_started(task_id: str = "", task: Any = None, args: Any = None, **_: Any) -> None:
    try:
        spec = spec_of_task(task.name)
    except (KeyError, AttributeError):
        return
    stage = spec.name if isinstance(spec, StageSpec) else spec.stage
    payload = args[0] if args and isinstance(args[0], dict) else {}
    trace = Trace.parse(payload.get("traceparent"))
    context = log_context(job_id=payload.get("job_id"), session_id=payload.get("session_id"),
                          trace_id=trace.trace_id if trace else None, span_id=secrets.token_hex(8),
                          stage=stage, segment=payload.get("segment"))
    context.__enter__()
    published = published_at(task.request)
    _published.set(published)
    attempt = int(getattr(task.request, "retries", 0) or 0) + 1
    waited = None
    if published is not None and attempt == 1:
        waited = max(0.0, time.time() - published)
        QUEUE_WAIT.labels(stage).observe(waited)
    _running[task_id] = _Running(stage, task_kind(spec, payload), time.perf_counter(), published, context)
    log.info("%s task started (attempt %d%s)", stage, attempt,
             f", waited {waited:.3f} s in the queue" if waited is not None else "")


@task_postrun.connect(weak=False)
def task_ended(task_id: str = "", retval: Any = None, state: str | None = None, **_: Any) -> None:
    running = _running.pop(task_id, None)
    if running is None:
        return
    seconds = time.perf_counter() - running.started
    if state == "RETRY":
        outcome = "retry"
    elif isinstance(retval, dict) and isinstance(retval.get("status"), str):
        outcome = retval["status"]
    else:
        outcome = "error"
    TASK_SECONDS.labels(running.stage, running.kind, outcome).observe(seconds)
    if outcome == "failed":
        FAILURES.labels(running.stage, str(retval.get("code") or "unknown")).inc()
    log.info("%s task ended: %s in %.3f s", running.stage, outcome, seconds)
    _published.set(None)
    running.context.__exit__(None, None, None)
