"""Publishing progress events (``contracts.events.JobEvent``) to the coordinator.

Persistent JSON messages on a durable topic exchange with routing key
``job.<stage>.<kind>``. The publisher also declares the coordinator's durable
queue and its binding, so events wait in the broker when no coordinator is
running; the coordinator's consumer declares the same queue (``events_queue``).
"""

from __future__ import annotations

from kombu import Exchange, Queue

from contracts.events import JobEvent
from contracts.settings import Settings
from pipeline.app import app


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
