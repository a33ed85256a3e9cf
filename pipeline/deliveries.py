"""How many times a task's message has been delivered: the farm's own delivery limit.

Classic queues (which carry priorities on RabbitMQ 3.10 and 4 alike) do not count
deliveries, so the runner counts them in the results Redis, per task ID and
attempt (a Celery retry is a new message, a redelivery after a lost worker is the
same one). A task delivered more than ``broker.max_deliveries`` times keeps
killing its worker (out of memory, a native crash): the runner fails its job with
``stage_crashed`` and rejects the message, which the queue dead-letters.
"""

from __future__ import annotations

import logging

import redis

from contracts.settings import Settings
from pipeline.results import results_redis

log = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600


class DeliveryCounter:
    def __init__(self, client: "redis.Redis[bytes]", prefix: str = "", ttl_seconds: int = TTL_SECONDS) -> None:
        self._redis = client
        self._prefix = f"{prefix}talkfarm:deliveries:"
        self._ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryCounter:
        return cls(results_redis(settings), prefix=settings.queue_prefix)

    def _key(self, task_id: str, attempt: int) -> str:
        return f"{self._prefix}{task_id}:{attempt}"

    def count(self, task_id: str, attempt: int) -> int | None:
        """Count this delivery; returns the deliveries so far, or None when Redis does not answer."""
        key = self._key(task_id, attempt)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self._ttl)
                deliveries, _ = pipe.execute()
            return int(deliveries)
        except redis.RedisError as e:
            log.warning("could not count the delivery of %s: %s", task_id, e)
            return None

    def deliveries(self, task_id: str, attempt: int = 0) -> int:
        """How many times this attempt of the task has been delivered so far (0: not yet, or forgotten)."""
        raw = self._redis.get(self._key(task_id, attempt))
        return int(raw) if raw is not None else 0

    def uncount(self, task_id: str, attempt: int) -> None:
        """Take back a delivery that ended in a requeue the worker chose (an outage, not a crash)."""
        try:
            self._redis.decr(self._key(task_id, attempt))
        except redis.RedisError as e:
            log.warning("could not take back the delivery of %s: %s", task_id, e)

    def reset(self, task_id: str) -> None:
        """Forget every count of a task (``talkfarm-admin dlq replay``)."""
        for key in self._redis.scan_iter(f"{self._prefix}{task_id}:*"):
            self._redis.delete(key)
