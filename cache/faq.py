"""The FAQ answer cache: replies to first-turn questions, by normalised question, persona and model.

A question asked at the start of a conversation ("What are your opening hours?")
gets the same reply whoever asks it, as long as the persona (system prompt), the
model and the generation options are the same and sampling is deterministic.
The LLM stage looks such questions up here before generating. Entries are the
``faq`` namespace of ``cache.store.Cache``: in the LRU cache Redis
instance (evicted with the videos), hit and miss counters in the results
instance. A cache that is down is a miss, never a failed job.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, Mapping

from cache.keys import content_hash
from cache.store import Cache

if TYPE_CHECKING:
    from contracts.settings import Settings

NAMESPACE = "faq"
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
    """Replies by FAQ key: the ``faq`` namespace of the JSON result cache."""

    def __init__(self, cache_url: str, stats_url: str, ttl_seconds: int, socket_timeout: float = 2.0,
                 stats_prefix: str = "") -> None:
        self._results = Cache(NAMESPACE, cache_url, stats_url, ttl_seconds, socket_timeout, stats_prefix)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "FaqCache":
        return cls(settings.redis.cache_url, settings.redis.results_url,
                   settings.llm.faq_cache_ttl_seconds, settings.redis.socket_timeout, settings.queue_prefix)

    def get(self, key: str) -> str | None:
        """The cached reply, counting a hit or a miss."""
        value = self._results.get(key)
        reply = None if value is None else value.get("reply")
        return reply if isinstance(reply, str) else None

    def put(self, key: str, reply: str) -> bool:
        return self._results.put(key, {"reply": reply})

    def stats(self) -> dict[str, int]:
        return self._results.stats()
