"""A job's stop flag, in the results Redis: set when the job is cancelled or has failed.

``DELETE /v1/jobs/{id}`` sets it before it answers; so do a stage that fails the
job and the sweeper that times it out. Every stage task checks it before it
starts work, and the LLM task between sentences, so once the cancel is
acknowledged (or the job has failed) no further subtask of the job starts. Flags expire after a day: the
job store keeps the lasting record.
"""

from __future__ import annotations

import logging

import redis

from contracts.settings import Settings
from pipeline.results import results_redis

log = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600


class CancelFlags:
    def __init__(self, client: "redis.Redis[bytes]", prefix: str = "", ttl_seconds: int = TTL_SECONDS) -> None:
        self._redis = client
        self._prefix = f"{prefix}talkfarm:job:"
        self._ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> CancelFlags:
        return cls(results_redis(settings), prefix=settings.queue_prefix)

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}{job_id}:cancelled"

    def cancel(self, job_id: str) -> None:
        self._redis.set(self._key(job_id), "1", ex=self._ttl)

    def clear(self, job_id: str) -> None:
        """Let the job's subtasks run again (``talkfarm-admin dlq replay``)."""
        self._redis.delete(self._key(job_id))

    def cancelled(self, job_id: str) -> bool:
        return bool(self._redis.exists(self._key(job_id)))

    def cancelled_or_unknown(self, job_id: str) -> bool:
        """Whether the job was cancelled; a Redis outage counts as not cancelled (the work goes on)."""
        try:
            return self.cancelled(job_id)
        except redis.RedisError:
            log.warning("could not read the cancel flag of job %s", job_id, exc_info=True)
            return False
