"""What every stage task does around its own work, and how the job goes on afterwards.

``run_stage`` validates the payload, skips the work of a cancelled job, reports
``started``, runs the stage's work, reports ``finished`` (or ``failed`` with an
error code), then hands the job on as the work's ``Outcome`` says:

* ``payload``: to the next stage of the plan, or ``completed`` after the last one;
* ``segment``: a streamed sentence was rendered: report it (``segment`` event) and
  land it in the ledger; the task that completes the set publishes the assembly;
* ``segments``: a streamed reply was cut into this many sentences (their TTS
  subtasks are out already): record the count, and assemble if all have landed.

The work never publishes what follows it; the stages own their work, the runner
owns the hand-on. Transient errors are retried with exponential backoff and
jitter; permanent ones end the job with their code and never take the worker down.

A payload's ``cache_key`` stands for the stage offers the coordinator assumed
(``stage_digests``); a worker whose own offer differs drops it, so a video made by
other backends or settings is never stored under that key.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task
from pydantic import ValidationError

from contracts.errors import PermanentError, StageError, StageTimeout, TransientError
from contracts.events import JobEvent, segment_summary
from contracts.payload import JobPayload
from contracts.settings import Settings, get_settings
from pipeline import runtime
from pipeline.cancel import CancelFlags
from pipeline.dispatch import publish_assembly, publish_stage
from pipeline.events import publish_event
from pipeline.ledger import Segment, ledger_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a stage's work did: its event summary and how the job goes on (see the module docstring)."""

    summary: dict[str, Any] = field(default_factory=dict)
    payload: JobPayload | None = None
    segment: Segment | None = None
    segment_data: dict[str, Any] = field(default_factory=dict)  # extra data of the ``segment`` event
    segments: int | None = None


StageWork = Callable[[JobPayload], Outcome]


def backoff_seconds(retries: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * 2**retries))


def run_stage(task: Task, stage: str, raw: object, work: StageWork, limits: str | None = None) -> dict[str, Any]:
    """Run one stage of one job. Returns a small JSON result for the Celery result backend.

    ``limits`` names the stage whose settings (retries, time limits) and offer apply, when not ``stage``.
    """
    settings = get_settings()
    limits = limits or stage
    try:
        payload = JobPayload.model_validate(raw)
    except ValidationError as e:
        # A message we cannot even read: nothing to report the failure to.
        log.error("rejected malformed %s payload: %d errors at %s", stage, e.error_count(),
                  ", ".join(".".join(map(str, err["loc"])) for err in e.errors()))
        return {"status": "rejected", "code": "bad_payload"}

    def emit(kind: str, data: dict[str, Any] | None = None, seconds: float | None = None,
             at: float | None = None) -> None:
        data = data or {}
        if payload.segment is not None:
            data = {"segment": payload.segment, **data}
        publish_event(JobEvent(job_id=payload.job_id, session_id=payload.session_id, stage=stage,
                               kind=kind,  # type: ignore[arg-type]
                               at=at or time.time(), seconds=seconds, data=data), settings)

    # The start time is taken before the cancel check: a task that starts after a cancel was
    # acknowledged always sees the flag, so no "started" event is ever later than a cancel.
    started_at = time.time()
    if CancelFlags.from_settings(settings).cancelled_or_unknown(payload.job_id):
        log.info("skipping %s of cancelled job %s", stage, payload.job_id)
        return {"status": "cancelled"}
    payload = _checked_cache_key(payload, limits)
    emit("started", {"attempt": task.request.retries + 1}, at=started_at)
    start = time.perf_counter()
    try:
        outcome = work(payload)
    except TransientError as e:
        limit = settings.stage(limits).max_retries
        if task.request.retries < limit:
            emit("retrying", {"code": e.code, "message": e.message})
            raise task.retry(exc=e, countdown=backoff_seconds(task.request.retries), max_retries=limit)
        return _fail(emit, stage, e, time.perf_counter() - start)
    except SoftTimeLimitExceeded:
        limit_s = settings.stage(limits).soft_seconds
        return _fail(emit, stage, StageTimeout(f"{stage} took longer than {limit_s:g} s"),
                     time.perf_counter() - start)
    except StageError as e:
        return _fail(emit, stage, e, time.perf_counter() - start)
    except Exception as e:  # a bug, not the input: fail the job, keep the worker
        log.exception("%s stage crashed on job %s", stage, payload.job_id)
        error = PermanentError(f"internal error in the {stage} stage: {type(e).__name__}",
                               code="internal_error")
        return _fail(emit, stage, error, time.perf_counter() - start)

    seconds = time.perf_counter() - start
    summary = segment_summary(outcome.summary) if payload.segment is not None else outcome.summary
    emit("finished", summary, seconds)
    _hand_on(payload, outcome, emit, settings)
    runtime.offers().refresh()
    return {"status": "ok", "seconds": round(seconds, 3)}


def _hand_on(job: JobPayload, outcome: Outcome, emit: Callable[..., None], settings: Settings) -> None:
    if outcome.segment is not None:
        segment = outcome.segment
        emit("segment", {"seconds": segment.seconds, "text": segment.text, "video_key": segment.video_key,
                         **outcome.segment_data}, segment.seconds)
        if ledger_for(settings).land(job.job_id, segment):
            publish_assembly(job, settings)
    elif outcome.segments is not None:
        if ledger_for(settings).close(job.job_id, outcome.segments):
            publish_assembly(job, settings)
    elif outcome.payload is not None:
        following = outcome.payload.for_next_stage()
        if following is None:
            emit("completed", outcome.summary)
        else:
            publish_stage(following, settings)


def _checked_cache_key(payload: JobPayload, stage: str) -> JobPayload:
    """The payload without its cache key when this worker's offer is not the one the key stands for."""
    if payload.cache_key is None:
        return payload
    own = runtime.own_offer(stage)
    if own is not None and payload.stage_digests.get(stage) == own.digest:
        return payload
    log.info("job %s: this %s worker's offer differs from the cache key's; the video will not be cached",
             payload.job_id, stage)
    return payload.model_copy(update={"cache_key": None})


def _fail(emit: Callable[..., None], stage: str, error: StageError, seconds: float) -> dict[str, Any]:
    log.warning("%s stage failed: %s", stage, error.code)  # the message may quote the user's text: not logged
    emit("failed", {"code": error.code, "message": error.message}, seconds)
    return {"status": "failed", "code": error.code}
