"""The video namespace of the cache on a real Redis instance with maxmemory and allkeys-lru."""

from __future__ import annotations

import os

import pytest
import redis

from cache.store import VIDEO, Cache
from tests.farm import start_lru_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def lru():
    instance = start_lru_redis("4mb")
    yield instance
    instance.process.terminate()
    instance.process.wait()


@pytest.fixture(scope="module")
def results():
    """A private Redis for the hit and miss counts: farms running beside this test count in the machine's."""
    instance = start_lru_redis("4mb")
    yield instance
    instance.process.terminate()
    instance.process.wait()


def test_put_get_and_counts(lru, results):
    redis.Redis.from_url(results.url).delete("talkfarm:stats:video_cache")
    cache = Cache(VIDEO, lru.url, results.url, ttl_seconds=60)
    assert cache.get_media("k") is None
    assert cache.put_media("k", b"mp4 bytes", {"reply": "hi"})
    hit = cache.get_media("k")
    assert hit is not None and hit.data == b"mp4 bytes" and hit.meta == {"reply": "hi"}
    assert cache.stats() == {"hits": 1, "misses": 1}


def test_two_farms_share_entries_and_count_apart(lru, results):
    """Farms with their own ``queue_prefix`` on one results Redis: an entry is found by both (content hash),
    each counts only its own lookups."""
    one = Cache(VIDEO, lru.url, results.url, ttl_seconds=60, stats_prefix="one-")
    two = Cache(VIDEO, lru.url, results.url, ttl_seconds=60, stats_prefix="two-")
    assert one.put_media("shared", b"mp4", {})
    assert two.get_media("shared") is not None and two.get_media("other") is None
    assert (one.stats(), two.stats()) == ({"hits": 0, "misses": 0}, {"hits": 1, "misses": 1})


def test_least_recently_used_videos_are_evicted(lru, results):
    cache = Cache(VIDEO, lru.url, results.url, ttl_seconds=60)
    blob = os.urandom(256 * 1024)
    for i in range(40):  # 10 MB into a 4 MB instance: writes keep succeeding, old videos go
        assert cache.put_media(f"v{i}", blob, {"i": i})
    client = redis.Redis.from_url(lru.url)
    assert client.info("memory")["maxmemory_policy"] == "allkeys-lru"
    assert client.info("stats")["evicted_keys"] > 0
    assert client.dbsize() < 40
    # Redis's LRU clock ticks once a second, so only the newest entry is certain to stay.
    assert cache.get_media("v39", count=False) is not None


def test_a_cache_that_is_down_is_a_miss(results):
    cache = Cache(VIDEO, "redis://127.0.0.1:1/0", results.url, ttl_seconds=60, socket_timeout=0.5)
    assert cache.get_media("anything") is None
    assert cache.put_media("anything", b"x", {}) is False
    assert cache.ping() is False
