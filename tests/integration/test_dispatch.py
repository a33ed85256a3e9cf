"""Publishing stage tasks through the real RabbitMQ: a stage queue at its length limit refuses, and says so."""

from __future__ import annotations

import uuid

import pytest

from contracts.payload import JobPayload
from contracts.settings import Settings
from pipeline.app import app, stage_queues
from pipeline.dispatch import QueueFull, publish_stage
from tests.farm import BROKER_URL, delete_broker_objects

pytestmark = pytest.mark.integration


def test_a_full_stage_queue_raises_queue_full(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kombu retries a nacked publish and then raises OperationalError from the nack: still QueueFull.
    settings = Settings(queue_prefix=f"test-{uuid.uuid4().hex[:8]}-",
                        broker={"url": BROKER_URL, "queue_max_length": 1})
    monkeypatch.setattr("pipeline.app.app.conf.broker_url", BROKER_URL)
    for queue in stage_queues(settings):  # routable under the test's prefix
        monkeypatch.setitem(app.amqp.queues, queue.name, queue)
    payload = JobPayload(job_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), mode="speak",
                         plan=["tts", "animation"], portrait_key="d" * 64 + ".png", context_key="e" * 64 + ".json")
    try:
        publish_stage(payload, settings)
        with pytest.raises(QueueFull, match="the tts queue is full"):
            publish_stage(payload, settings)
    finally:
        delete_broker_objects(settings)
