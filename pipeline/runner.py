"""What every stage task does around its own work, and how the job goes on afterwards.

``run_stage`` validates the payload, drops a second published copy of a task that
another copy has started (``pipeline.claims``), counts the delivery (a message delivered
more than ``broker.max_deliveries`` times keeps killing its worker: the job fails
with ``stage_crashed`` and the message is dead-lettered), skips the work of a
cancelled or ended job, reports ``started``, runs the stage's work under its time
limits (``pipeline.watchdog`` where the pool has none), reports ``finished`` (or
``failed`` with an error code), then hands the job on as the work's ``Outcome``
says:

* ``payload``: to the next stage of the plan, or ``completed`` after the last one;
* ``segment``: a streamed sentence was rendered: report it (``segment`` event) and
  land it in the ledger; the task that completes the set publishes the assembly;
* ``segments``: a streamed reply was cut into this many sentences (their TTS
  subtasks are out already): record the count, and assemble if all have landed.

Every step before and after the work ends in one of three ways: it succeeds; it is
retried in place with backoff and jitter for ``reliability.handoff_seconds``
(broker, Redis and shared-disk outages); or the job fails with a code. When not
even the failure can be reported (the broker is gone), the message goes back to
its queue (``Reject(requeue=True)``): the work is redone on redelivery, and stage
outputs are content-addressed, so doing it twice stores the same artifacts.
Event IDs derive from the task ID, the attempt and the kind, so the events of a
redone task are recognised as the same events by the coordinator's store.

Payloads and events name the job's texts by artifact key (``contracts.job_texts``); a
payload of the previous version, with its texts in it, is stored as artifacts on arrival
(``upgrade_legacy_payload``) and runs as a current one.

A payload's ``cache_key`` stands for the stage offers the coordinator assumed
(``stage_digests``); a worker whose own offer differs drops it, so a video made by
other backends or settings is never stored under that key.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, TypeVar

from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task
from celery.exceptions import Reject
from pydantic import ValidationError

from contracts.artifacts import ArtifactStore
from contracts.errors import PermanentError, StageError, StageTimeout, TransientError, public_message
from contracts.events import TEXTS, JobEvent, segment_summary
from contracts.job_texts import upgrade_legacy_payload
from contracts.payload import JobPayload
from contracts.settings import Settings, get_settings
from pipeline import runtime
from pipeline.cancel import CancelFlags
from pipeline.claims import TaskClaims
from pipeline.deliveries import DeliveryCounter
from pipeline.dispatch import QueueFull, publish_assembly, publish_stage
from pipeline.events import publish_event
from pipeline.handoff import HandoffFailed, retrying
from pipeline.ledger import Segment, ledger_for
from pipeline.watchdog import WATCHDOG, pool_needs_watchdog

log = logging.getLogger(__name__)
T = TypeVar("T")


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


class _Run:
    """One delivery of one stage task: its payload, its events, its hand-on."""

    def __init__(self, task: Task, stage: str, payload: JobPayload, limits: str, settings: Settings) -> None:
        self.task, self.stage, self.payload, self.limits, self.settings = task, stage, payload, limits, settings
        self.attempt = int(task.request.retries or 0)
        self.task_id = str(task.request.id or f"{payload.job_id}.{stage}")

    def emit(self, kind: str, data: dict[str, Any] | None = None, seconds: float | None = None,
             at: float | None = None) -> None:
        data = data or {}
        if self.payload.segment is not None:
            data = {"segment": self.payload.segment, **data}
        event = JobEvent(job_id=self.payload.job_id, session_id=self.payload.session_id, stage=self.stage,
                         kind=kind,  # type: ignore[arg-type]
                         at=at or time.time(), seconds=seconds, data=data,
                         event_id=f"{self.task_id}:{self.attempt}:{kind}")
        publish_event(event, self.settings)

    def step(self, what: str, action: Callable[[], T]) -> T:
        """``action`` retried through outages for ``reliability.handoff_seconds``."""
        return retrying(what, action, self.settings.reliability.handoff_seconds)

    def fail(self, error: StageError, seconds: float | None) -> dict[str, Any]:
        """Report the job failed with the error's code and stop its other subtasks; requeue if it cannot be said."""
        log.warning("%s stage failed: %s", self.stage, error.code)  # the message may quote the user's text
        try:
            said = {"code": error.code, "message": public_message(error.message)}
            self.step("the failed event", lambda: self.emit("failed", said, seconds))
        except HandoffFailed:
            self.requeue("the failure of the job could not be reported")
        try:
            CancelFlags.from_settings(self.settings).cancel(self.payload.job_id)  # its other subtasks need not run
        except Exception:  # best effort: they would only fail or be ignored later
            log.warning("could not stop the other subtasks of job %s", self.payload.job_id, exc_info=True)
        return {"status": "failed", "code": error.code}

    def requeue(self, why: str) -> None:
        """Give the message back to its queue for a later delivery (an outage, not the task's fault)."""
        log.error("%s of job %s goes back to its queue: %s", self.stage, self.payload.job_id, why)
        DeliveryCounter.from_settings(self.settings).uncount(self.task_id, self.attempt)
        raise Reject(why, requeue=True)


def run_stage(task: Task, stage: str, raw: object, work: StageWork, limits: str | None = None) -> dict[str, Any]:
    """Run one stage of one job. Returns a small JSON result for the Celery result backend.

    ``limits`` names the stage whose settings (retries, time limits) and offer apply, when not ``stage``.
    """
    settings = get_settings()
    try:
        payload = JobPayload.model_validate(upgrade_legacy_payload(raw, ArtifactStore(settings.artifact_dir)))
    except ValidationError as e:
        # A message we cannot even read: nothing to report the failure to.
        log.error("rejected malformed %s payload: %d errors at %s", stage, e.error_count(),
                  ", ".join(".".join(map(str, err["loc"])) for err in e.errors()))
        return {"status": "rejected", "code": "bad_payload"}
    run = _Run(task, stage, payload, limits or stage, settings)

    if not TaskClaims.from_settings(settings).claim(run.task_id, run.attempt, payload.copy_id):
        log.info("dropping another copy of %s: one has started already", run.task_id)
        return {"status": "duplicate"}
    deliveries = DeliveryCounter.from_settings(settings).count(run.task_id, run.attempt)
    if deliveries is not None and deliveries > settings.broker.max_deliveries:
        error = PermanentError(f"the {stage} task ended its worker {deliveries - 1} times", code="stage_crashed")
        run.fail(error, None)
        log.error("dead-lettering %s after %d deliveries", run.task_id, deliveries)
        raise Reject("poison message", requeue=False)

    # The start time is taken before the cancel check: a task that starts after a cancel was
    # acknowledged always sees the flag, so no "started" event is ever later than a cancel.
    started_at = time.time()
    if CancelFlags.from_settings(settings).cancelled_or_unknown(payload.job_id):
        log.info("skipping %s of stopped job %s", stage, payload.job_id)
        return {"status": "cancelled"}
    run.payload = payload = _checked_cache_key(payload, run.limits)
    try:
        run.step("the started event", lambda: run.emit("started", {"attempt": run.attempt + 1}, at=started_at))
    except HandoffFailed as e:
        run.requeue(str(e))

    start = time.perf_counter()
    try:
        with _time_limits(run):
            outcome = work(payload)
    except TransientError as e:
        limit = settings.stage(run.limits).max_retries
        if run.attempt < limit:
            said = {"code": e.code, "message": e.message}
            try:
                run.step("the retrying event", lambda: run.emit("retrying", said))
            except HandoffFailed as failed:
                run.requeue(str(failed))
            raise task.retry(exc=e, countdown=backoff_seconds(run.attempt), max_retries=limit)
        return run.fail(e, time.perf_counter() - start)
    except SoftTimeLimitExceeded:
        limit_s = settings.stage(run.limits).soft_seconds
        return run.fail(StageTimeout(f"{stage} took longer than {limit_s:g} s"), time.perf_counter() - start)
    except StageError as e:
        return run.fail(e, time.perf_counter() - start)
    except Exception as e:  # a bug, not the input: fail the job, keep the worker
        log.exception("%s stage crashed on job %s", stage, payload.job_id)
        error = PermanentError(f"internal error in the {stage} stage: {type(e).__name__}", code="internal_error")
        return run.fail(error, time.perf_counter() - start)

    seconds = time.perf_counter() - start
    summary = segment_summary(outcome.summary) if payload.segment is not None else outcome.summary
    try:
        run.step("the finished event", lambda: run.emit("finished", summary, seconds))
        _hand_on(run, outcome)
    except QueueFull as e:
        return run.fail(PermanentError(str(e), code="queue_full"), seconds)
    except HandoffFailed as e:
        return run.fail(PermanentError(f"the job could not be handed on: {e}", code="handoff_failed"), seconds)
    runtime.offers().refresh()
    return {"status": "ok", "seconds": round(seconds, 3)}


def _hand_on(run: _Run, outcome: Outcome) -> None:
    job, settings = run.payload, run.settings
    ledger = ledger_for(settings)
    if outcome.segment is not None:
        segment = outcome.segment
        run.step("the segment event", lambda: run.emit(
            "segment", {"seconds": segment.seconds, TEXTS: {"text": segment.text_key}, "video_key": segment.video_key,
                        **outcome.segment_data}, segment.seconds))
        if run.step("landing the segment", lambda: ledger.land(job.job_id, segment, run.task_id)):
            _publish_assembly(run)
    elif outcome.segments is not None:
        total = outcome.segments
        if run.step("recording the segment count", lambda: ledger.close(job.job_id, total, run.task_id)):
            _publish_assembly(run)
    elif outcome.payload is not None:
        following = outcome.payload.for_next_stage()
        if following is None:
            run.step("the completed event", lambda: run.emit("completed", outcome.summary))
        else:
            run.step("publishing the next stage", lambda: publish_stage(following, settings))


def _publish_assembly(run: _Run) -> None:
    job, settings = run.payload, run.settings
    run.step("publishing the assembly", lambda: publish_assembly(job, settings))
    run.step("marking the assembly published", lambda: ledger_for(settings).mark_assembled(job.job_id))


def _time_limits(run: _Run) -> ContextManager[None]:
    """Celery's own limits in prefork; the watchdog's in the threads and solo pools."""
    if not pool_needs_watchdog():
        return nullcontext()
    limits = run.settings.stage(run.limits)

    def on_hard() -> None:
        run.emit("failed", {"code": "stage_timeout",
                            "message": f"{run.stage} took longer than {limits.hard_seconds:g} s"})

    return WATCHDOG.guard(limits.soft_seconds, limits.hard_seconds, on_hard)


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
