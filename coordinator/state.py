"""What one coordinator process holds: settings, the stores, the cache, the stage catalog, the event consumer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import redis
from sqlalchemy import text

from cache.store import Cache, video_cache
from contracts.artifacts import ArtifactStore
from contracts.settings import Settings
from coordinator.events import EventConsumer, JobWatchers
from coordinator.jobs import JobService
from coordinator.store import migrate
from coordinator.store.repo import JobStore, make_engine
from pipeline import broker
from pipeline.catalog import StageCatalog


@dataclass
class AppState:
    settings: Settings
    store: JobStore
    artifacts: ArtifactStore
    cache: Cache
    catalog: StageCatalog
    jobs: JobService
    watchers: JobWatchers
    consumer: EventConsumer | None = field(default=None)

    @classmethod
    def start(cls, settings: Settings, loop: asyncio.AbstractEventLoop) -> AppState:
        engine = make_engine(settings.db_url)
        migrate.check(engine)
        store = JobStore(engine)
        artifacts = ArtifactStore(settings.artifact_dir)
        cache = video_cache(settings)
        catalog = StageCatalog.from_settings(settings)
        watchers = JobWatchers(loop)
        jobs = JobService(settings, store, artifacts, cache, catalog)
        state = cls(settings, store, artifacts, cache, catalog, jobs, watchers)
        state.consumer = EventConsumer(settings, store, watchers)
        state.consumer.start()
        return state

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
        self.store.engine.dispose()

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
