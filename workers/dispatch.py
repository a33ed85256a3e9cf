"""The one place where stage tasks are published.

The coordinator publishes the first stage of a job (or the first stage of each
sentence segment of a streamed ``speak`` job); each stage hands on to the next
through ``publish_stage``. The Celery task ID is derived from the job, stage and
segment, so a job's subtasks can be found (and revoked) by name.
"""

from __future__ import annotations

from workers.celery_app import TASK_NAMES, app
from workers.payload import JobPayload
from workers.settings import Settings


def task_id(job_id: str, stage: str, segment: int | None = None) -> str:
    return f"{job_id}.{stage}" if segment is None else f"{job_id}.{stage}.{segment}"


def publish_stage(payload: JobPayload, settings: Settings) -> str:
    stage = payload.stage
    return publish_task(TASK_NAMES[stage], payload, stage, stage, settings)


def publish_task(name: str, payload: JobPayload, queue: str, verb: str, settings: Settings) -> str:
    """Publish task ``name`` with ``payload`` on the stage queue ``queue``."""
    result = app.send_task(
        name,
        args=[payload.model_dump(mode="json")],
        task_id=task_id(payload.job_id, verb, payload.segment),
        queue=settings.queue_name(queue),
        exchange=settings.queue_name("talkfarm.stages"),
        routing_key=queue,
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2},
    )
    return str(result.id)
