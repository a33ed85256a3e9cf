"""The results Redis: Celery results, the segment ledger, cancel flags, stage offers, counters.

Nothing there is evicted (the caches live in their own LRU instance). One
client (and connection pool) per process and URL.
"""

from __future__ import annotations

from functools import lru_cache

import redis

from contracts.settings import Settings


def results_redis(settings: Settings) -> "redis.Redis[bytes]":
    return _client(settings.redis.results_url, settings.redis.socket_timeout)


@lru_cache(maxsize=4)
def _client(url: str, socket_timeout: float) -> "redis.Redis[bytes]":
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
