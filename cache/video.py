"""The rendered-video cache: MP4 bytes and a little metadata by content hash.

It lives in its own Redis instance configured with ``maxmemory`` and
``allkeys-lru`` (eviction is instance-wide, so nothing else may share it).
Hit and miss counters live in the results instance, where nothing is evicted.
A cache that is down is a miss, never a failed job.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from cache.results import read_stats

if TYPE_CHECKING:
    from workers.settings import Settings

log = logging.getLogger(__name__)

_PREFIX = "talkfarm:video:"
_STATS = "talkfarm:stats:video_cache"


@dataclass(frozen=True)
class CachedVideo:
    video: bytes
    meta: dict[str, Any]


class VideoCache:
    def __init__(self, cache_url: str, stats_url: str, ttl_seconds: int, socket_timeout: float = 2.0) -> None:
        self._cache = redis.Redis.from_url(cache_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        self._stats = redis.Redis.from_url(stats_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        self._ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings: "Settings") -> "VideoCache":
        return cls(settings.redis.cache_url, settings.redis.results_url,
                   settings.video_cache_ttl_seconds, settings.redis.socket_timeout)

    def get(self, key: str, count: bool = True) -> CachedVideo | None:
        try:
            video, meta = self._cache.hmget(_PREFIX + key, ["video", "meta"])
        except redis.RedisError as e:
            log.warning("video cache unavailable, treating as a miss: %s", e)
            video = meta = None
        if count:
            self._count("misses" if video is None or meta is None else "hits")
        if video is None or meta is None:
            return None
        return CachedVideo(bytes(video), json.loads(meta))

    def put(self, key: str, video: bytes, meta: dict[str, Any]) -> bool:
        name = _PREFIX + key
        try:
            with self._cache.pipeline(transaction=True) as pipe:
                pipe.hset(name, mapping={"video": video, "meta": json.dumps(meta)})
                pipe.expire(name, self._ttl)
                pipe.execute()
        except redis.RedisError as e:
            log.warning("could not store a video in the cache: %s", e)
            return False
        return True

    def stats(self) -> dict[str, int]:
        return read_stats(self._stats, _STATS)

    def ping(self) -> bool:
        try:
            return bool(self._cache.ping())
        except redis.RedisError:
            return False

    def _count(self, field: str) -> None:
        try:
            self._stats.hincrby(_STATS, field, 1)
        except redis.RedisError as e:
            log.warning("could not count a video cache %s: %s", field, e)
