"""Waking the event streams of a job on every coordinator, not only on the one that stored the event.

Several coordinators consume the events queue side by side, so the one that stores
a job's event is rarely the one whose client follows that job. Whoever changes a
job (the event consumer, a cancel, the sweeper) pokes its own streams at once and
publishes the job's ID on a channel of the results Redis; every coordinator
listens there and pokes its streams for that job. The streams then read the new
events from the store: one query per change instead of polling. If the channel
is down, streams still look every ``FALLBACK_SECONDS`` (``coordinator.sse``).
"""

from __future__ import annotations

import logging
import threading

import redis

from contracts.settings import Settings
from coordinator.events import JobWatchers
from pipeline.results import results_redis

log = logging.getLogger(__name__)


class JobNotifier:
    def __init__(self, settings: Settings, watchers: JobWatchers | None) -> None:
        """``watchers``: this process's streams (None in a process without any: it only publishes)."""
        self._redis = results_redis(settings)
        self._channel = f"{settings.queue_prefix}talkfarm:job-changed"
        self._watchers = watchers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def changed(self, job_id: str) -> None:
        """The job has new events: wake its streams here and on every other coordinator."""
        if self._watchers is not None:
            self._watchers.poke(job_id)
        try:
            self._redis.publish(self._channel, job_id)
        except redis.RedisError as e:
            log.warning("could not tell the other coordinators about job %s: %s", job_id, e)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="job-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message" and self._watchers is not None:
                        self._watchers.poke(message["data"].decode())
                pubsub.close()
            except redis.RedisError as e:
                log.warning("job change channel unavailable (%s); streams fall back to polling", e)
                self._stop.wait(5.0)
