"""The FAQ answer cache on a real LRU Redis instance: answers by normalised question, counted."""

from __future__ import annotations

import pytest
import redis

from cache.faq import FaqCache, faq_key
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


def test_a_normalised_question_finds_its_answer_and_is_counted(lru, results):
    stats = redis.Redis.from_url(results.url)
    stats.delete("talkfarm:stats:faq_cache")
    cache = FaqCache(lru.url, results.url, ttl_seconds=60)
    options = {"temperature": 0.0, "max_new_tokens": 60}
    key = faq_key("What is the capital of France?", "You are Max.", "transformers:1:/m", options)
    assert cache.get(key) is None
    assert cache.put(key, "The capital of France is Paris.")
    same = faq_key("  what's... the capital of FRANCE ", "You are Max.", "transformers:1:/m", options)
    assert cache.get(same) is None  # "what's" is not "what is": different questions
    again = faq_key("what is the capital of france", "You are Max.", "transformers:1:/m", options)
    assert cache.get(again) == "The capital of France is Paris."
    assert cache.stats() == {"hits": 1, "misses": 2}
    assert 0 < redis.Redis.from_url(lru.url).ttl(f"talkfarm:faq:{key}") <= 60


def test_a_cache_that_is_down_is_a_miss(lru, results):
    cache = FaqCache(lru.url, results.url, ttl_seconds=60, socket_timeout=0.5)
    lru.process.terminate()
    lru.process.wait()
    assert cache.get("anything") is None
    assert cache.put("anything", "reply") is False
