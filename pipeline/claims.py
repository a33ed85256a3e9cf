"""One copy of a task does the work: claims in the results Redis, per task ID and attempt.

A task may be published more than once: the coordinator's sweeper publishes a job
that waits too long again, one priority level higher, and publishes an accepted
job whose publication it cannot confirm. Each published copy carries its own
``copy_id`` nonce. The first copy that starts claims the task; a later delivery of
the same copy (a redelivery after its worker died) holds the claim and runs; any
other copy finds the task claimed and is dropped without events.
"""

from __future__ import annotations

import logging

import redis

from contracts.settings import Settings
from pipeline.results import results_redis

log = logging.getLogger(__name__)


class TaskClaims:
    def __init__(self, client: "redis.Redis[bytes]", prefix: str = "", ttl_seconds: int = 6 * 3600) -> None:
        self._redis = client
        self._prefix = f"{prefix}talkfarm:claim:"
        self._ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskClaims:
        return cls(results_redis(settings), prefix=settings.queue_prefix)

    def claim(self, task_id: str, attempt: int, copy: str) -> bool:
        """Whether this copy may run the task: it claimed it now, or holds the claim already.

        A copy without a nonce (published before copies existed) and a Redis that does not
        answer both run: at worst the work is done twice, and its outputs are content-addressed.
        """
        if not copy:
            return True
        key = f"{self._prefix}{task_id}:{attempt}"
        try:
            if self._redis.set(key, copy, nx=True, ex=self._ttl):
                return True
            holder = self._redis.get(key)
        except redis.RedisError as e:
            log.warning("could not claim %s: %s", task_id, e)
            return True
        return holder is None or holder.decode() == copy
