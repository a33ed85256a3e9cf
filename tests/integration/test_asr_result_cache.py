"""The generic JSON result cache and the ASR stage's use of it, on a real Redis with maxmemory and allkeys-lru."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import redis

from cache.store import Cache
from contracts.artifacts import ArtifactStore
from contracts.audio import wav_bytes
from contracts.errors import PermanentError
from contracts.settings import Settings
from tests.fakes.backends import FakeASR
from tests.farm import RESULTS_URL, RedisInstance, start_lru_redis
from workers.asr.tasks import cached_transcription

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lru() -> Iterator[RedisInstance]:
    instance = start_lru_redis("8mb")
    yield instance
    instance.process.terminate()
    instance.process.wait()


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of its own, so that the counters in the shared results Redis start at zero."""
    name = f"test_{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis.from_url(RESULTS_URL).delete(f"talkfarm:stats:{name}_cache")


def test_put_get_ttl_and_counts(lru: RedisInstance, namespace: str) -> None:
    cache = Cache(namespace, lru.url, RESULTS_URL, ttl_seconds=60)

    assert cache.get("k") is None
    assert cache.put("k", {"text": "hello", "n": 2, "nested": {"a": [1, 2]}})
    assert cache.get("k") == {"text": "hello", "n": 2, "nested": {"a": [1, 2]}}
    assert cache.stats() == {"hits": 1, "misses": 1}
    assert cache.get("k", count=False) is not None and cache.stats()["hits"] == 1
    client = redis.Redis.from_url(lru.url)
    assert 0 < client.ttl(f"talkfarm:{namespace}:k") <= 60
    assert client.info("memory")["maxmemory_policy"] == "allkeys-lru"


def test_namespaces_do_not_see_each_other(lru: RedisInstance, namespace: str) -> None:
    first = Cache(namespace, lru.url, RESULTS_URL, ttl_seconds=60)
    second = Cache(namespace + "_other", lru.url, RESULTS_URL, ttl_seconds=60)
    try:
        first.put("same-key", {"from": "first"})

        assert second.get("same-key") is None
        assert second.stats() == {"hits": 0, "misses": 1}
        assert first.stats() == {"hits": 0, "misses": 0}
    finally:
        redis.Redis.from_url(RESULTS_URL).delete(f"talkfarm:stats:{namespace}_other_cache")


def test_an_unreadable_entry_is_a_miss(lru: RedisInstance, namespace: str) -> None:
    cache = Cache(namespace, lru.url, RESULTS_URL, ttl_seconds=60)
    client = redis.Redis.from_url(lru.url)
    client.set(f"talkfarm:{namespace}:bad", b"\xff not json")
    client.set(f"talkfarm:{namespace}:list", b"[1, 2]")

    assert cache.get("bad") is None and cache.get("list") is None
    assert cache.stats() == {"hits": 0, "misses": 2}


def test_a_cache_that_is_down_is_a_miss(namespace: str) -> None:
    cache = Cache(namespace, "redis://127.0.0.1:1/0", RESULTS_URL, ttl_seconds=60, socket_timeout=0.5)

    assert cache.get("anything") is None
    assert cache.put("anything", {"x": 1}) is False
    assert cache.ping() is False
    assert cache.stats() == {"hits": 0, "misses": 1}


def test_bad_namespace_or_ttl_is_refused() -> None:
    for namespace in ("", "Video", "a:b", "1x"):
        with pytest.raises(ValueError):
            Cache(namespace, RESULTS_URL, RESULTS_URL, ttl_seconds=60)
    with pytest.raises(ValueError):
        Cache("asr", RESULTS_URL, RESULTS_URL, ttl_seconds=0)


def test_asr_transcribes_each_recording_once(lru: RedisInstance, namespace: str, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    recording = store.put_bytes(wav_bytes(np.full(16000, 0.1, dtype=np.float32), 16000), "wav").key
    other = store.put_bytes(wav_bytes(np.full(8000, 0.1, dtype=np.float32), 16000), "wav").key
    cache = Cache(namespace, lru.url, RESULTS_URL, ttl_seconds=60)
    asr = FakeASR(Settings(), text="what time is it")

    def run(key: str, language: str | None = None) -> bool:
        result, hit = cached_transcription(asr, cache, key, store.path(key), language, max_seconds=60)
        assert result.text == "what time is it"
        return hit

    assert [run(recording), run(recording), run(other), run(recording, "en"), run(other)] == \
        [False, True, False, False, True]
    assert asr.knobs.calls == 3
    assert cache.stats() == {"hits": 2, "misses": 3}


def test_asr_failures_are_not_cached(lru: RedisInstance, namespace: str, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    key = store.put_bytes(wav_bytes(np.zeros(16000, dtype=np.float32), 16000), "wav").key
    cache = Cache(namespace, lru.url, RESULTS_URL, ttl_seconds=60)
    asr = FakeASR(Settings())
    asr.knobs.fail_with = PermanentError("no speech was found in the audio", code="no_speech")

    for _ in range(2):
        with pytest.raises(PermanentError):
            cached_transcription(asr, cache, key, store.path(key), None, max_seconds=60)

    assert asr.knobs.calls == 2
    assert cache.stats() == {"hits": 0, "misses": 2}
