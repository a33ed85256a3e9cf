"""Cache lookups as Prometheus counters, in whichever process looks up (coordinator or worker).

``talkfarm_cache_requests_total{namespace, result}``: ``result`` is ``hit`` or ``miss``;
``namespace`` is the cache's (``video``, ``asr``, ``tts_phrases``, ``faq``), a bounded set
named in the code. The farm-wide counts in the results Redis (``GET /v1/stats``) are
counted at the same moment (``cache.store.Cache``).
"""

from __future__ import annotations

from prometheus_client import Counter

CACHE_REQUESTS = Counter(
    "talkfarm_cache_requests",
    "Cache lookups by namespace and result (hit or miss)",
    ["namespace", "result"],
)


def count_lookup(namespace: str, hit: bool) -> None:
    CACHE_REQUESTS.labels(namespace, "hit" if hit else "miss").inc()
