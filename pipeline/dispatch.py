"""The one place where stage tasks are published: a job's first stage, its sentence segments, its assembly.

The coordinator publishes a job's first stage (``publish_stage``), or, for a
streamed ``speak`` job, one TTS subtask per sentence (``publish_sentences``);
each stage hands on to the next through ``publish_stage``; the task that sees a
streamed job's last segment land publishes its assembly (``publish_assembly``).
A task's ID is derived from the job, the stage and the segment
(``<job>.<verb>[.<segment>]``), so a job's subtasks can be found by name.
A message names its texts by artifact key only (``contracts.job_texts``): a sentence
is stored before its subtask is published.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Iterable

from amqp.exceptions import MessageNacked
from kombu.exceptions import OperationalError

from contracts.payload import JobPayload
from contracts.settings import Settings
from pipeline.app import app
from pipeline.ledger import ledger_for
from pipeline.stages import ASSEMBLE, STAGES


class QueueFull(Exception):
    """The stage queue refused the message: it holds ``broker.queue_max_length`` already."""


def task_id(job_id: str, verb: str, segment: int | None = None) -> str:
    return f"{job_id}.{verb}" if segment is None else f"{job_id}.{verb}.{segment}"


def publish_stage(payload: JobPayload, settings: Settings) -> str:
    """Publish the task of the payload's current stage (``plan[0]``)."""
    spec = STAGES[payload.stage]
    return _publish(spec.task, payload, spec.queue, spec.name, settings)


def segment_payload(job: JobPayload, index: int, text_key: str) -> JobPayload:
    """The payload of sentence ``index`` of a streamed reply (stored under ``text_key``): it goes on
    through TTS and animation."""
    return job.model_copy(update={"plan": ["tts", "animation"], "segment": index, "segment_text_key": text_key})


def publish_sentences(job: JobPayload, text_keys: Iterable[str], settings: Settings) -> int:
    """Publish one TTS subtask per sentence (the keys of its text artifacts), numbered from 0, and record
    how many there are.

    Returns the number of segments. Publishes the assembly too in the unlikely case that
    every segment has landed by the time the count is recorded.
    """
    total = 0
    for index, text_key in enumerate(text_keys):
        publish_stage(segment_payload(job, index, text_key), settings)
        total = index + 1
    ledger = ledger_for(settings)
    if ledger.close(job.job_id, total, owner=task_id(job.job_id, "speak")):
        publish_assembly(job, settings)
        ledger.mark_assembled(job.job_id)
    return total


def publish_assembly(job: JobPayload, settings: Settings) -> str:
    """Publish the task that joins a streamed job's segments into its MP4."""
    final = job.model_copy(update={"plan": [ASSEMBLE.stage], "segment": None, "segment_text_key": None})
    return _publish(ASSEMBLE.task, final, STAGES[ASSEMBLE.stage].queue, ASSEMBLE.verb, settings)


def aged_priority(payload: JobPayload, settings: Settings, now: float | None = None) -> int:
    """The job's tier priority, one level higher for every ``auth.priority_aging_seconds`` it has waited since
    it was accepted, at most ``broker.max_priority``: however busy the higher tiers, a job's messages rise
    until they are served first-come first-served among the highest."""
    ceiling = settings.broker.max_priority
    base = min(payload.priority, ceiling)
    aging = settings.auth.priority_aging_seconds
    if payload.accepted_at is None or aging <= 0:
        return base
    waited = max(0.0, (time.time() if now is None else now) - payload.accepted_at)
    return min(ceiling, base + math.floor(waited / aging))


def _publish(name: str, payload: JobPayload, queue: str, verb: str, settings: Settings) -> str:
    payload = payload.model_copy(update={"copy_id": uuid.uuid4().hex})
    try:
        result = app.send_task(
            name,
            args=[payload.model_dump(mode="json")],
            # What task events (and so Flower) show of the arguments: IDs, never the job's texts.
            argsrepr=f"[job {payload.job_id} session {payload.session_id} segment {payload.segment}]",
            kwargsrepr="{}",
            priority=aged_priority(payload, settings),
            task_id=task_id(payload.job_id, verb, payload.segment),
            queue=settings.queue_name(queue),
            exchange=settings.queue_name("talkfarm.stages"),
            routing_key=queue,
            # Nobody reads a stage task's return value (events carry the outcome): no result is stored, and the
            # publisher does not subscribe to the result's channel in the results Redis.
            ignore_result=True,
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2},
        )
    except (MessageNacked, OperationalError) as e:
        # Publisher confirms: a nack means the queue is at its length limit (reject-publish). Kombu counts a
        # nack as a recoverable error: it retries the publish, then raises OperationalError from the nack.
        if isinstance(e, MessageNacked) or isinstance(e.__cause__, MessageNacked):
            raise QueueFull(f"the {queue} queue is full") from e
        raise
    return str(result.id)
