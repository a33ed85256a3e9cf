"""The coordinator's background work in a process of its own (``talkfarm-admin background``).

With ``coordinator.background = "separate"`` the HTTP processes only answer
requests; this process applies the worker events to the job store
(``coordinator.events.EventConsumer``), wakes the event streams of every HTTP
process through the results Redis (``coordinator.notify``), and runs the sweeper
and retention (``coordinator.maintenance``). Under load the HTTP process then no
longer shares its interpreter lock with a thread that writes every worker event.

Several of these processes may run side by side (the events queue has several
consumers, maintenance takes a lease each round). Each renews a heartbeat in the
results Redis every ``coordinator.heartbeat_seconds`` while its consumer is
healthy; ``/readyz`` of the HTTP processes reads it (``heartbeat_check``). SIGTERM
or SIGINT stops it: the event in hand is stored and acknowledged first.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time

import redis

from cache.store import video_cache
from contracts.artifacts import ArtifactStore
from contracts.settings import Settings
from coordinator.events import EventConsumer
from coordinator.heap import freeze_startup_heap
from coordinator.maintenance import Maintenance
from coordinator.notify import JobNotifier
from coordinator.store import migrate
from coordinator.store.repo import JobStore, make_engine
from pipeline.results import results_redis

log = logging.getLogger(__name__)


def heartbeat_key(settings: Settings) -> str:
    return f"{settings.queue_prefix}talkfarm:background:heartbeat"


def heartbeat_check(settings: Settings, client: redis.Redis) -> str:
    """``ok`` when a background process reported a healthy event consumer within the timeout, else why not."""
    try:
        raw = client.get(heartbeat_key(settings))
    except redis.RedisError as e:
        return f"error: the heartbeat cannot be read ({e})"
    if raw is None:
        return "error: no background process has reported (talkfarm-admin background)"
    beat = json.loads(raw)
    if time.time() - float(beat["at"]) > settings.coordinator.heartbeat_timeout_seconds:
        return "error: the background process's heartbeat is too old"
    return "ok" if beat["healthy"] else f"error: {beat.get('error') or 'the event consumer is not healthy'}"


class Background:
    """The event consumer, the job-change notifier and maintenance, with a heartbeat."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        engine = make_engine(settings.db_url)
        migrate.check(engine)
        self.store = JobStore(engine)
        artifacts = ArtifactStore(settings.artifact_dir)
        self.notifier = JobNotifier(settings, None)  # no streams here: it only tells the HTTP processes
        self.consumer = EventConsumer(settings, self.store, artifacts, self.notifier.changed)
        self.maintenance = Maintenance(settings, self.store, artifacts, video_cache(settings), self.notifier.changed)
        self._redis = results_redis(settings)
        self._stop = threading.Event()

    def beat(self) -> None:
        """Write the heartbeat once (it expires after the timeout, so a dead process's beat goes by itself)."""
        beat = {"at": time.time(), "healthy": self.consumer.healthy, "error": self.consumer.last_error}
        timeout = max(1, int(self.settings.coordinator.heartbeat_timeout_seconds))
        try:
            self._redis.set(heartbeat_key(self.settings), json.dumps(beat), ex=timeout)
        except redis.RedisError as e:
            log.warning("could not write the background heartbeat: %s", e)

    def run(self) -> None:
        """Start everything and beat until ``stop``."""
        self.consumer.start()
        self.maintenance.start()
        frozen = freeze_startup_heap()
        log.info("background process started: event consumer, sweeper, retention (%d start-up objects frozen)",
                 frozen)
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.settings.coordinator.heartbeat_seconds)
        self.maintenance.stop()
        self.consumer.stop()
        self.store.engine.dispose()

    def stop(self) -> None:
        self._stop.set()


def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT."""
    background = Background(settings)
    signal.signal(signal.SIGTERM, lambda *_: background.stop())
    signal.signal(signal.SIGINT, lambda *_: background.stop())
    background.run()
    return 0
