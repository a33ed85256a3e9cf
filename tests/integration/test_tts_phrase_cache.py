"""The phrase cache on a real LRU Redis: repeated sentences skip synthesis, hits and misses are counted,
and a cache that is down only costs the synthesis."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest
import redis

from cache.store import Cache
from contracts.settings import Settings, TTSSettings
from tests.fakes.backends import FakeTTS
from tests.farm import RESULTS_URL, RedisInstance, start_lru_redis
from workers.tts.phrases import NAMESPACE, PhraseCache

pytestmark = pytest.mark.integration


@pytest.fixture
def lru() -> Iterator[RedisInstance]:
    instance = start_lru_redis("16mb")
    yield instance
    instance.process.terminate()
    instance.process.wait()


@pytest.fixture
def results() -> Iterator[RedisInstance]:
    """A private Redis for the hit and miss counts: farms running beside this test count in the machine's."""
    instance = start_lru_redis("16mb")
    yield instance
    instance.process.terminate()
    instance.process.wait()


def settings(cache_url: str, results_url: str = RESULTS_URL) -> Settings:
    s = Settings(tts=TTSSettings(sample_rate=16000, backend_for_language={}))
    return s.model_copy(update={"redis": s.redis.model_copy(update={"cache_url": cache_url,
                                                                    "results_url": results_url})})


def test_repeated_phrases_are_served_from_redis(lru: RedisInstance, results: RedisInstance) -> None:
    s = settings(lru.url, results.url)
    cache = PhraseCache.from_settings(s)
    backend = FakeTTS(s)

    first = backend.synthesize("Hello there. Sorry, I have no answer to that.", cache=cache)
    again = backend.synthesize("Sorry, I have no answer to that. Hello there.", cache=cache)

    assert backend.knobs.seen == ["Hello there.", "Sorry, I have no answer to that."]
    assert cache.stats() == {"hits": 2, "misses": 2}
    assert abs(first.seconds - again.seconds) < 1e-3
    keys = redis.Redis.from_url(lru.url).keys(f"talkfarm:{NAMESPACE}:*")
    assert len(keys) == 2
    assert 0 < redis.Redis.from_url(lru.url).ttl(keys[0]) <= s.tts.phrase_cache_ttl_seconds

    # Another process (a fresh cache client) is served the same audio.
    other = FakeTTS(s).synthesize("Hello there.", cache=PhraseCache.from_settings(s))
    assert np.allclose(other.samples[:100], first.samples[:100], atol=1e-4)


def test_a_cache_that_is_down_costs_only_the_synthesis() -> None:
    s = settings("redis://127.0.0.1:1/0")
    cache = PhraseCache(Cache(NAMESPACE, "redis://127.0.0.1:1/0", RESULTS_URL, 60, socket_timeout=0.2), 200)
    backend = FakeTTS(s)
    speech = backend.synthesize("Hello there. Hello there.", cache=cache)
    assert backend.knobs.calls == 2
    assert speech.sample_rate == 16000 and speech.seconds > 1.0
