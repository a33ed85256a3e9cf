"""The one place where stage tasks are published.

The coordinator publishes the first stage of a job; each stage hands on to the
next through ``publish_stage``. The Celery task ID is derived from the job and
stage, so a job's subtasks can be found (and revoked) by name.
"""

from __future__ import annotations

from workers.celery_app import TASK_NAMES, app
from workers.payload import JobPayload
from workers.settings import Settings


def task_id(job_id: str, stage: str) -> str:
    return f"{job_id}.{stage}"


def publish_stage(payload: JobPayload, settings: Settings) -> str:
    stage = payload.stage
    result = app.send_task(
        TASK_NAMES[stage],
        args=[payload.model_dump(mode="json")],
        task_id=task_id(payload.job_id, stage),
        queue=settings.queue_name(stage),
        exchange=settings.queue_name("talkfarm.stages"),
        routing_key=stage,
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2},
    )
    return str(result.id)
