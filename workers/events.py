"""Progress events from the stage workers to the coordinator.

Published as persistent JSON messages on a durable topic exchange with routing
key ``job.<stage>.<kind>``. The publisher also declares the coordinator's
durable queue and its binding, so events wait in the broker when no
coordinator is running.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from kombu import Exchange, Queue
from pydantic import BaseModel, Field

from workers.settings import Settings

EventKind = Literal["queued", "started", "retrying", "finished", "failed", "completed", "segment", "cancelled"]


class JobEvent(BaseModel):
    job_id: str
    session_id: str
    stage: str
    kind: EventKind
    at: float = Field(default_factory=time.time)
    seconds: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def events_exchange(settings: Settings) -> Exchange:
    return Exchange(settings.queue_name(settings.broker.events_exchange), type="topic", durable=True)


def events_queue(settings: Settings) -> Queue:
    return Queue(
        settings.queue_name(settings.broker.events_queue),
        events_exchange(settings),
        routing_key="job.#",
        durable=True,
    )


def publish_event(event: JobEvent, settings: Settings) -> None:
    """Publish one event through the Celery app's producer pool (bounded retries)."""
    from workers.celery_app import app

    queue = events_queue(settings)
    with app.producer_or_acquire() as producer:
        producer.publish(
            event.model_dump(mode="json"),
            exchange=queue.exchange,
            routing_key=f"job.{event.stage}.{event.kind}",
            serializer="json",
            delivery_mode=2,
            declare=[queue],
            retry=True,
            retry_policy={"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5},
        )
