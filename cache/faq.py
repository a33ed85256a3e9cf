"""The FAQ answer cache: replies to first-turn questions, by normalised question, persona and model.

A question asked at the start of a conversation ("What are your opening hours?")
gets the same reply whoever asks it, as long as the persona (system prompt), the
model and the generation options are the same and sampling is deterministic.
The LLM stage looks such questions up here before generating. Entries live in
the LRU cache Redis instance (evicted with the videos); hit and miss counters
live in the results instance. A cache that is down is a miss, never a failed job.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import TYPE_CHECKING, Any, Mapping

import redis

from cache.keys import content_hash

if TYPE_CHECKING:
    from workers.settings import Settings

log = logging.getLogger(__name__)

_PREFIX = "talkfarm:faq:"
_STATS = "talkfarm:stats:faq_cache"
_NOT_WORD = re.compile(r"[^\w]+")


def normalise_question(text: str) -> str:
    """The question as compared: Unicode-normalised, case-folded, punctuation and spacing ignored.

    "What's the time?", "  what's   the TIME " and "Whats the time" are one question.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("'", "").replace("\u2019", "")  # "what's" and "whats"
    return " ".join(_NOT_WORD.sub(" ", text).split())


def faq_key(question: str, system_prompt: str, model: str, options: Mapping[str, Any]) -> str:
    """Cache key of the reply to ``question`` under one persona, model and set of generation options."""
    return content_hash("faq", normalise_question(question), system_prompt.strip(), model, dict(options))


class FaqCache:
    def __init__(self, cache_url: str, stats_url: str, ttl_seconds: int, socket_timeout: float = 2.0) -> None:
        self._cache = redis.Redis.from_url(cache_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        self._stats = redis.Redis.from_url(stats_url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        self._ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings: "Settings") -> "FaqCache":
        return cls(settings.redis.cache_url, settings.redis.results_url,
                   settings.llm.faq_cache_ttl_seconds, settings.redis.socket_timeout)

    def get(self, key: str) -> str | None:
        """The cached reply, counting a hit or a miss."""
        try:
            value = self._cache.get(_PREFIX + key)
        except redis.RedisError as e:
            log.warning("FAQ cache unavailable, treating as a miss: %s", e)
            value = None
        self._count("misses" if value is None else "hits")
        return None if value is None else bytes(value).decode()

    def put(self, key: str, reply: str) -> bool:
        try:
            self._cache.set(_PREFIX + key, reply.encode(), ex=self._ttl)
        except redis.RedisError as e:
            log.warning("could not store a FAQ answer: %s", e)
            return False
        return True

    def stats(self) -> dict[str, int]:
        try:
            raw = self._stats.hgetall(_STATS)
        except redis.RedisError:
            return {"hits": 0, "misses": 0}
        return {"hits": int(raw.get(b"hits", 0)), "misses": int(raw.get(b"misses", 0))}

    def _count(self, field: str) -> None:
        try:
            self._stats.hincrby(_STATS, field, 1)
        except redis.RedisError as e:
            log.warning("could not count a FAQ cache %s: %s", field, e)
