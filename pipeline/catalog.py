"""The stage offers of the running farm, in the results Redis (``contracts.catalog.StageOffer``).

``talkfarm-worker`` publishes its stage's offer before it starts consuming (the
offer needs the settings and the backends' classes, no model), each worker
process again when its backends are loaded, and again at most every
``REFRESH_SECONDS`` after a task, so an offer lost with a Redis restart comes
back. Offers never expire: a stage scaled to zero keeps its last offer, so a
cached video is still served without waking it. The coordinator reads them (at
most once every ``max_age`` seconds, unless a stage it needs is missing) for the
cache keys, the voices and the languages a job may ask for.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

import redis
from pydantic import ValidationError

from contracts.catalog import StageOffer
from contracts.settings import Settings
from pipeline.results import results_redis

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0


class StageCatalog:
    def __init__(self, client: "redis.Redis[bytes]", prefix: str = "", max_age: float = 5.0) -> None:
        self._redis = client
        self._key = f"{prefix}talkfarm:offers"
        self._max_age = max_age
        self._offers: dict[str, StageOffer] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, max_age: float = 5.0) -> StageCatalog:
        return cls(results_redis(settings), prefix=settings.queue_prefix, max_age=max_age)

    def publish(self, offer: StageOffer) -> None:
        self._redis.hset(self._key, offer.stage, offer.model_dump_json())

    def offers(self, require: Iterable[str] = ()) -> dict[str, StageOffer]:
        """The published offers by stage; the last ones read when Redis does not answer.

        A read younger than ``max_age`` is reused unless it lacks a stage of ``require``.
        """
        with self._lock:
            fresh = time.monotonic() - self._read_at <= self._max_age
            if fresh and all(stage in self._offers for stage in require):
                return dict(self._offers)
            try:
                raw = self._redis.hgetall(self._key)
            except redis.RedisError as e:
                log.warning("could not read the stage offers: %s", e)
                return dict(self._offers)
            offers: dict[str, StageOffer] = {}
            for stage, value in raw.items():
                try:
                    offers[stage.decode()] = StageOffer.model_validate_json(value)
                except ValidationError as e:
                    log.warning("ignoring an unreadable offer of stage %s: %s", stage.decode(), e)
            self._offers, self._read_at = offers, time.monotonic()
            return dict(offers)

    def offer(self, stage: str) -> StageOffer | None:
        return self.offers().get(stage)


class OfferPublisher:
    """A worker's side: publish its stages' offers at start and refresh them after tasks."""

    def __init__(self, catalog: StageCatalog) -> None:
        self._catalog = catalog
        self._own: dict[str, StageOffer] = {}
        self._published_at = float("-inf")
        self._lock = threading.Lock()

    def own(self, stage: str) -> StageOffer | None:
        return self._own.get(stage)

    def publish(self, offer: StageOffer) -> None:
        with self._lock:
            self._own[offer.stage] = offer
        self._try_publish([offer])

    def refresh(self) -> None:
        """Publish the offers again when the last publication is older than ``REFRESH_SECONDS``."""
        if time.monotonic() - self._published_at > REFRESH_SECONDS:
            self._try_publish(list(self._own.values()))

    def _try_publish(self, offers: list[StageOffer]) -> None:
        try:
            for offer in offers:
                self._catalog.publish(offer)
            self._published_at = time.monotonic()
        except redis.RedisError as e:
            log.warning("could not publish the stage offer: %s", e)
