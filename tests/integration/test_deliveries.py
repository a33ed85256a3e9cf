"""The delivery counter on the real results Redis: counted per task and attempt, read back, taken back, reset."""

from __future__ import annotations

import uuid

import pytest
import redis

from pipeline.deliveries import DeliveryCounter
from tests.farm import RESULTS_URL

pytestmark = pytest.mark.integration


def test_deliveries_are_counted_per_attempt_and_read_back() -> None:
    counter = DeliveryCounter(redis.Redis.from_url(RESULTS_URL), prefix=f"test-{uuid.uuid4().hex[:8]}-",
                              ttl_seconds=60)
    task = f"{uuid.uuid4()}.tts"
    assert counter.deliveries(task) == 0
    assert [counter.count(task, 0) for _ in range(3)] == [1, 2, 3]
    assert counter.count(task, 1) == 1  # a Celery retry is another attempt, counted apart
    assert (counter.deliveries(task), counter.deliveries(task, 1)) == (3, 1)
    counter.uncount(task, 0)  # a requeue the worker chose is not a crash
    assert counter.deliveries(task) == 2
    counter.reset(task)  # ``dlq replay``
    assert (counter.deliveries(task), counter.deliveries(task, 1)) == (0, 0)
