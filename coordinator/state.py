"""What one coordinator process holds: settings, the stores, the cache, the stage catalog, the event consumer
and the maintenance thread (sweeper and retention); and its readiness.

With ``coordinator.background = "separate"`` the event consumer and maintenance run in
their own process (``coordinator.background``) and this one only answers requests;
readiness then checks that process's heartbeat instead of a thread of its own.

Readiness: the database (at the current schema), the broker, the results Redis
and the event consumer must be up, else 503 ``not_ready``; the cache Redis is
optional (jobs succeed without it, only slower), so without it the answer is 200
``degraded``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from sqlalchemy import text

from cache.store import Cache, video_cache
from contracts.artifacts import ArtifactStore
from contracts.settings import Settings
from coordinator.auth import KeyCache
from coordinator.background import heartbeat_check
from coordinator.erasure import Eraser
from coordinator.events import EventConsumer, JobWatchers
from coordinator.jobs import JobService
from coordinator.maintenance import Maintenance
from coordinator.notify import JobNotifier
from coordinator.quotas import Quotas
from coordinator.store import migrate
from coordinator.store.keys import IdempotencyStore, KeyStore
from coordinator.store.repo import JobStore, make_engine
from pipeline import broker
from pipeline.catalog import StageCatalog
from pipeline.results import results_redis


def erasable_caches(settings: Settings, video: Cache) -> dict[str, Cache]:
    """The caches whose entries a deleted session takes with it."""
    caches = {"video": video}
    if settings.asr.cache_ttl_seconds > 0:
        caches["asr"] = Cache.from_settings(settings, "asr", settings.asr.cache_ttl_seconds)
    return caches


@dataclass
class AppState:
    settings: Settings
    store: JobStore
    artifacts: ArtifactStore
    cache: Cache
    catalog: StageCatalog
    jobs: JobService
    watchers: JobWatchers
    notifier: JobNotifier
    keys: KeyCache
    quotas: Quotas
    idempotency: IdempotencyStore
    # Uploads are decoded here, not in the default executor that reads and /readyz use.
    decode_pool: ThreadPoolExecutor
    eraser: Eraser
    consumer: EventConsumer | None = field(default=None)
    maintenance: Maintenance | None = field(default=None)

    @classmethod
    def start(cls, settings: Settings, loop: asyncio.AbstractEventLoop) -> AppState:
        engine = make_engine(settings.db_url)
        migrate.check(engine)
        store = JobStore(engine)
        artifacts = ArtifactStore(settings.artifact_dir)
        cache = video_cache(settings)
        catalog = StageCatalog.from_settings(settings)
        watchers = JobWatchers(loop)
        notifier = JobNotifier(settings, watchers)
        jobs = JobService(settings, store, artifacts, cache, catalog)
        state = cls(settings, store, artifacts, cache, catalog, jobs, watchers, notifier,
                    KeyCache(KeyStore(engine), settings.auth.key_cache_seconds), Quotas(settings),
                    IdempotencyStore(engine),
                    ThreadPoolExecutor(settings.limits.decode_workers, thread_name_prefix="decode"),
                    Eraser(store, artifacts, erasable_caches(settings, cache)))
        notifier.start()
        if settings.coordinator.background == "inline":
            state.consumer = EventConsumer(settings, store, artifacts, notifier.changed)
            state.consumer.start()
            state.maintenance = Maintenance(settings, store, artifacts, cache, notifier.changed)
            state.maintenance.start()
        return state

    def stop(self) -> None:
        if self.maintenance is not None:
            self.maintenance.stop()
        if self.consumer is not None:
            self.consumer.stop()
        self.notifier.stop()
        self.decode_pool.shutdown(wait=False, cancel_futures=True)
        self.store.engine.dispose()

    def readiness(self) -> tuple[str, dict[str, str]]:
        """``ready``, ``degraded`` (only the cache is down) or ``not_ready``, with every check's result."""
        checks = self.check_dependencies()
        consumer = self.consumer
        if self.settings.coordinator.background == "separate":
            checks["event_consumer"] = heartbeat_check(self.settings, results_redis(self.settings))
        else:
            checks["event_consumer"] = "ok" if consumer is not None and consumer.healthy else \
                f"error: {consumer.last_error if consumer is not None else 'not started'}"
        failing = {name for name, result in checks.items() if result != "ok"}
        if not failing:
            return "ready", checks
        return ("degraded" if failing == {"redis_cache"} else "not_ready"), checks

    def check_dependencies(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            migrate.check(self.store.engine)
            checks["database"] = "ok"
        except Exception as e:
            checks["database"] = f"error: {e}"
        try:
            broker.ping(self.settings)
            checks["broker"] = "ok"
        except Exception as e:
            checks["broker"] = f"error: {e}"
        for name, url in (("redis_results", self.settings.redis.results_url),
                          ("redis_cache", self.settings.redis.cache_url)):
            try:
                client = redis.Redis.from_url(url, socket_timeout=self.settings.redis.socket_timeout,
                                              socket_connect_timeout=self.settings.redis.socket_timeout)
                client.ping()
                checks[name] = "ok"
            except redis.RedisError as e:
                checks[name] = f"error: {e}"
        return checks
