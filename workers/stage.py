"""What every stage task does around its own work.

``run_stage`` validates the payload, skips the work of a cancelled job, reports
``started``, runs the stage's work, reports ``finished`` (or ``failed`` with an
error code), and hands on to the next stage of the plan, or reports
``completed`` after the last one. Work that hands on by itself (a streamed
reply fans out into sentence segments) returns, instead of a payload, ``None``
or a callable that does the handing on once the ``finished`` event is out.
Transient errors are retried with exponential backoff and jitter; permanent
ones end the job with their code and never take the worker down.
"""

from __future__ import annotations

import logging
import random
import time
from functools import lru_cache
from typing import Any, Callable

import redis
from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task
from pydantic import ValidationError

from workers.dispatch import publish_stage
from workers.errors import PermanentError, StageError, StageTimeout, TransientError
from workers.events import JobEvent, publish_event
from workers.payload import JobPayload
from workers.segments import SegmentLedger
from workers.settings import get_settings

log = logging.getLogger(__name__)

# What the work hands on: the output payload for the next stage; or a callable that hands on by
# itself, called after the "finished" event; or None when it has handed on already.
HandOn = Callable[[], None]
StageWork = Callable[[JobPayload], tuple[JobPayload | HandOn | None, dict[str, Any]]]


@lru_cache(maxsize=1)
def ledger() -> SegmentLedger:
    """One ledger client per worker process."""
    return SegmentLedger.from_settings(get_settings())


def is_cancelled(job_id: str) -> bool:
    """Whether ``DELETE /v1/jobs/{id}`` cancelled the job; a Redis outage counts as not cancelled."""
    try:
        return ledger().cancelled(job_id)
    except redis.RedisError:
        log.warning("could not read the cancel flag of job %s", job_id, exc_info=True)
        return False


def backoff_seconds(retries: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * 2**retries))


def run_stage(task: Task, stage: str, raw: object, work: StageWork, limits: str | None = None) -> dict[str, Any]:
    """Run one stage of one job. Returns a small JSON result for the Celery result backend.

    ``limits`` names the stage whose settings (retries, time limits) apply, when not ``stage``.
    """
    settings = get_settings()
    limits = limits or stage
    try:
        payload = JobPayload.model_validate(raw)
    except ValidationError as e:
        # A message we cannot even read: nothing to report the failure to.
        log.error("rejected malformed %s payload: %s", stage, e)
        return {"status": "rejected", "code": "bad_payload"}

    segment = {} if payload.segment is None else {"segment": payload.segment}

    def emit(kind: str, seconds: float | None = None, at: float | None = None, **data: Any) -> None:
        publish_event(
            JobEvent(job_id=payload.job_id, session_id=payload.session_id, stage=stage,
                     kind=kind,  # type: ignore[arg-type]
                     at=at or time.time(), seconds=seconds, data={**segment, **data}),
            settings,
        )

    # The start time is taken before the cancel check: a task that starts after a cancel was
    # acknowledged always sees the flag, so no "started" event is ever later than a cancel.
    started_at = time.time()
    if is_cancelled(payload.job_id):
        log.info("skipping %s of cancelled job %s", stage, payload.job_id)
        return {"status": "cancelled"}
    emit("started", at=started_at, attempt=task.request.retries + 1)
    start = time.perf_counter()
    try:
        output, summary = work(payload)
    except TransientError as e:
        limit = settings.stage(limits).max_retries
        if task.request.retries < limit:
            emit("retrying", code=e.code, message=e.message)
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
    emit("finished", seconds, **summary)
    if output is None or not isinstance(output, JobPayload):
        if output is not None:
            output()
        return {"status": "ok", "seconds": round(seconds, 3)}
    following = output.for_next_stage()
    if following is None:
        emit("completed", **summary)
    else:
        publish_stage(following, settings)
    return {"status": "ok", "seconds": round(seconds, 3)}


def _fail(emit: Callable[..., None], stage: str, error: StageError, seconds: float) -> dict[str, Any]:
    log.warning("%s stage failed: %s (%s)", stage, error.message, error.code)
    emit("failed", seconds, code=error.code, message=error.message)
    return {"status": "failed", "code": error.code}
