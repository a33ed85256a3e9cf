"""The farm's one cache class: entries by content hash, one namespace per use.

Namespaces: ``video`` (rendered MP4s by request and by render key), ``asr``
(transcripts), ``tts_phrase`` (finished sentences), ``faq`` (first-turn replies).
Entries live in the LRU cache Redis (configured with ``maxmemory`` and
``allkeys-lru``; eviction is instance-wide, so nothing else may share it), under
``talkfarm:<namespace>:<key>`` with a TTL: a JSON object, or media bytes with a
JSON object of metadata. Hit and miss counters live in the results instance,
where nothing is evicted, under ``<queue_prefix>talkfarm:stats:<namespace>_cache`` (each farm
sharing a results Redis counts its own; the entries, by content hash, may be shared). A cache
that is down is a miss and a failed ``put``, never a failed job.

    cache = Cache.from_settings(settings, "asr", ttl_seconds=settings.asr.cache_ttl_seconds)
    value = cache.get(key)              # dict or None; counts a hit or a miss
    cache.put(key, {"text": "..."})     # True when stored
    video = video_cache(settings).get_media(key)   # CachedMedia(data, meta) or None
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import redis

from cache.metrics import count_lookup

if TYPE_CHECKING:
    from contracts.settings import Settings

log = logging.getLogger(__name__)

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]*$")
VIDEO = "video"


@dataclass(frozen=True)
class CachedMedia:
    data: bytes
    meta: dict[str, Any]


class Cache:
    """JSON objects, or media bytes with metadata, by key in one namespace of the LRU cache Redis."""

    def __init__(self, namespace: str, cache_url: str, stats_url: str, ttl_seconds: int,
                 socket_timeout: float = 2.0, stats_prefix: str = "") -> None:
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"a cache namespace is lower-case letters, digits and _, got {namespace!r}")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.namespace = namespace
        self._prefix = f"talkfarm:{namespace}:"
        self._stats_key = stats_key(namespace, stats_prefix)
        self._cache = redis.Redis.from_url(cache_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        self._stats = redis.Redis.from_url(stats_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        self._ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings: "Settings", namespace: str, ttl_seconds: int) -> "Cache":
        return cls(namespace, settings.redis.cache_url, settings.redis.results_url, ttl_seconds,
                   settings.redis.socket_timeout, settings.queue_prefix)

    def get(self, key: str, count: bool = True) -> dict[str, Any] | None:
        """The stored object, or None on a miss (an unreadable entry or a cache that is down is a miss)."""
        value: dict[str, Any] | None = None
        try:
            raw = self._cache.get(self._prefix + key)
        except redis.RedisError as e:
            log.warning("%s cache unavailable, treating as a miss: %s", self.namespace, e)
            raw = None
        if raw is not None:
            try:
                loaded = json.loads(raw)
            except ValueError:
                log.warning("%s cache entry %s is not JSON; ignoring it", self.namespace, key)
            else:
                value = loaded if isinstance(loaded, dict) else None
        if count:
            self._count("misses" if value is None else "hits")
        return value

    def put(self, key: str, value: Mapping[str, Any]) -> bool:
        """Store ``value`` (a JSON-serialisable mapping) under ``key`` with the TTL; False when not stored."""
        data = json.dumps(dict(value), separators=(",", ":"))
        try:
            self._cache.set(self._prefix + key, data, ex=self._ttl)
        except redis.RedisError as e:
            log.warning("could not store a %s cache entry: %s", self.namespace, e)
            return False
        return True

    def remove(self, key: str) -> bool:
        """Delete an entry; False when there was none or the cache is down."""
        try:
            return bool(self._cache.delete(self._prefix + key))
        except redis.RedisError as e:
            log.warning("could not remove a %s cache entry: %s", self.namespace, e)
            return False

    def contains(self, key: str) -> bool:
        """Whether an entry is there (without reading it or counting); False when the cache is down."""
        try:
            return bool(self._cache.exists(self._prefix + key))
        except redis.RedisError:
            return False

    def get_media(self, key: str, count: bool = True) -> CachedMedia | None:
        """Media bytes and their metadata, or None on a miss (a cache that is down is a miss)."""
        try:
            data, meta = self._cache.hmget(self._prefix + key, ["data", "meta"])
        except redis.RedisError as e:
            log.warning("%s cache unavailable, treating as a miss: %s", self.namespace, e)
            data = meta = None
        found = None
        if data is not None and meta is not None:
            try:
                found = CachedMedia(bytes(data), json.loads(meta))
            except ValueError:
                log.warning("%s cache entry %s has unreadable metadata; ignoring it", self.namespace, key)
        if count:
            self._count("misses" if found is None else "hits")
        return found

    def put_media(self, key: str, data: bytes, meta: Mapping[str, Any]) -> bool:
        """Store media bytes with JSON metadata under ``key`` with the TTL; False when not stored."""
        name = self._prefix + key
        try:
            with self._cache.pipeline(transaction=True) as pipe:
                pipe.hset(name, mapping={"data": data, "meta": json.dumps(dict(meta))})
                pipe.expire(name, self._ttl)
                pipe.execute()
        except redis.RedisError as e:
            log.warning("could not store a %s cache entry: %s", self.namespace, e)
            return False
        return True

    def stats(self) -> dict[str, int]:
        return read_stats(self._stats, self._stats_key)

    def ping(self) -> bool:
        try:
            return bool(self._cache.ping())
        except redis.RedisError:
            return False

    def _count(self, field: str) -> None:
        count_lookup(self.namespace, field == "hits")
        try:
            self._stats.hincrby(self._stats_key, field, 1)
        except redis.RedisError as e:
            log.warning("could not count a %s cache %s: %s", self.namespace, field, e)


def namespace_stats(settings: "Settings", namespace: str) -> dict[str, int]:
    """Hit and miss counts of one namespace, for ``GET /v1/stats``: reads only the results Redis,
    through one client per process."""
    client = _stats_client(settings.redis.results_url, settings.redis.socket_timeout)
    return read_stats(client, stats_key(namespace, settings.queue_prefix))


def stats_key(namespace: str, prefix: str = "") -> str:
    """The results-Redis hash of one namespace's hit and miss counts, in the farm of ``prefix``
    (``queue_prefix``)."""
    return f"{prefix}talkfarm:stats:{namespace}_cache"


@functools.lru_cache(maxsize=4)
def _stats_client(url: str, socket_timeout: float) -> "redis.Redis[bytes]":
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)


def read_stats(client: "redis.Redis[bytes]", key: str) -> dict[str, int]:
    """The hit and miss counters in hash ``key``; zeros when Redis is down."""
    try:
        raw = client.hgetall(key)
    except redis.RedisError:
        return {"hits": 0, "misses": 0}
    return {"hits": int(raw.get(b"hits", 0)), "misses": int(raw.get(b"misses", 0))}


def video_cache(settings: "Settings") -> Cache:
    """The rendered-video cache: one client (and connection pool) per process."""
    return _shared(VIDEO, settings.redis.cache_url, settings.redis.results_url, settings.video_cache_ttl_seconds,
                   settings.redis.socket_timeout, settings.queue_prefix)


@functools.lru_cache(maxsize=8)
def _shared(namespace: str, cache_url: str, stats_url: str, ttl_seconds: int, socket_timeout: float,
            stats_prefix: str) -> Cache:
    return Cache(namespace, cache_url, stats_url, ttl_seconds, socket_timeout, stats_prefix)
