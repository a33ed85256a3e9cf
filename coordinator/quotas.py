"""Quotas per API key and tier, kept in the results Redis so every coordinator counts the same.

* **Request rate**: a token bucket per key (GCRA, throttled-py's atomic Lua script):
  ``requests_per_minute`` refill, ``burst`` capacity; over it, 429 ``rate_limited``
  with ``Retry-After``. Every answer carries ``RateLimit-Limit``,
  ``RateLimit-Remaining`` and ``RateLimit-Reset`` (IETF draft headers).
* **Jobs in flight** (``too_many_jobs``) are counted in the job store at submit.
* **Upload bytes per UTC day** (``upload_quota_exceeded``), a counter per key and day.
* **Event streams open** (``too_many_streams``), a sorted set of the streams that
  have been alive in the last minute, so a coordinator that died leaks nothing.

When the results Redis does not answer, the quotas let requests through (and say
so in the log): an outage of the counters must not stop the farm.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import datetime, timedelta, timezone

import redis
from throttled import RateLimiterType, RedisStore, Throttled, per_min
from throttled.exceptions import StoreUnavailableError

from contracts.settings import Settings, TierSettings
from coordinator.errors import ApiError
from pipeline.results import results_redis

log = logging.getLogger(__name__)
STREAM_ALIVE_SECONDS = 60


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


class Quotas:
    def __init__(self, settings: Settings) -> None:
        self._redis = results_redis(settings)
        self._prefix = f"{settings.queue_prefix}talkfarm:quota:"
        self._store = RedisStore(server=settings.redis.results_url,
                                 options={"SOCKET_TIMEOUT": settings.redis.socket_timeout,
                                          "SOCKET_CONNECT_TIMEOUT": settings.redis.socket_timeout})
        self._limiters: dict[tuple[float, int], Throttled] = {}

    def _limiter(self, limits: TierSettings) -> Throttled:
        shape = (limits.requests_per_minute, limits.burst)
        if shape not in self._limiters:
            self._limiters[shape] = Throttled(using=RateLimiterType.GCRA.value, store=self._store,
                                              quota=per_min(int(limits.requests_per_minute), burst=limits.burst),
                                              key_prefix=f"{self._prefix}rate")
        return self._limiters[shape]

    def charge_request(self, key_id: str, limits: TierSettings) -> dict[str, str]:
        """Take one request from the key's bucket; the RateLimit-* headers, or 429 ``rate_limited``."""
        try:
            result = self._limiter(limits).limit(key_id, cost=1)
        except (redis.RedisError, StoreUnavailableError) as e:
            log.warning("request rate not checked: the results Redis does not answer (%s)", e)
            return {}
        state = result.state
        headers = {"RateLimit-Limit": str(state.limit), "RateLimit-Remaining": str(max(0, state.remaining)),
                   "RateLimit-Reset": str(math.ceil(state.reset_after))}
        if result.limited:
            wait = max(1, math.ceil(state.retry_after))
            raise ApiError(429, "rate_limited", f"too many requests for this key; try again in {wait} s",
                           headers={**headers, "Retry-After": str(wait)})
        return headers

    def charge_upload(self, key_id: str, size: int, limits: TierSettings) -> None:
        """Count ``size`` upload bytes against today's allowance; 429 ``upload_quota_exceeded`` past it."""
        now = datetime.now(timezone.utc)
        key = f"{self._prefix}upload:{key_id}:{now:%Y%m%d}"
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, size)
                pipe.expire(key, 2 * 24 * 3600)
                used, _ = pipe.execute()
            if int(used) > limits.upload_bytes_per_day:
                self._redis.decrby(key, size)
                wait = _seconds_to_midnight(now)
                raise ApiError(429, "upload_quota_exceeded",
                               f"this key may upload {limits.upload_bytes_per_day} bytes a day; "
                               f"the allowance renews at 00:00 UTC", headers={"Retry-After": str(wait)})
        except redis.RedisError as e:
            log.warning("upload quota not checked: the results Redis does not answer (%s)", e)

    def open_stream(self, key_id: str, limits: TierSettings) -> str:
        """Register an event stream of the key; 429 ``too_many_streams`` past its tier's cap."""
        stream = uuid.uuid4().hex
        key = f"{self._prefix}streams:{key_id}"
        now = time.time()
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now - STREAM_ALIVE_SECONDS)
                pipe.zadd(key, {stream: now})
                pipe.zcard(key)
                pipe.expire(key, 2 * STREAM_ALIVE_SECONDS)
                _, _, open_now, _ = pipe.execute()
            if int(open_now) > limits.max_event_streams:
                self._redis.zrem(key, stream)
                raise ApiError(429, "too_many_streams",
                               f"this key may follow {limits.max_event_streams} event streams at once",
                               headers={"Retry-After": "5"})
        except redis.RedisError as e:
            log.warning("event streams not counted: the results Redis does not answer (%s)", e)
        return stream

    def keep_stream(self, key_id: str, stream: str) -> None:
        try:
            self._redis.zadd(f"{self._prefix}streams:{key_id}", {stream: time.time()})
        except redis.RedisError:
            pass  # counted again once Redis answers; meanwhile the stream is not held against the key

    def close_stream(self, key_id: str, stream: str) -> None:
        try:
            self._redis.zrem(f"{self._prefix}streams:{key_id}", stream)
        except redis.RedisError:
            pass  # it ages out of the set within STREAM_ALIVE_SECONDS
