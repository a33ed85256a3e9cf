"""The coordinator's side of the worker events.

A background thread consumes the durable events queue, persists each event in
the job store (acknowledging only after the write) and wakes the SSE streams of
that job (``coordinator.notify``). The store keeps each event once (by its ID), so an
event redelivered after a crash between the write and the acknowledgement is not
stored twice. While the store is down, events go back to the broker and the
consumer waits, longer each time; the thread is supervised: whatever stops it,
it starts again, and ``/readyz`` reports it (``healthy``).

Events name the job's texts by artifact key (``contracts.events.TEXTS``); the consumer
reads each text and stores it in its field before it applies the event, so the job's
row, its stored events and the SSE stream hold the texts as the workers wrote them. A
text artifact that is gone (its session was deleted) leaves its field empty; a shared
disk that does not answer keeps the event in the broker, like a store that is down.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Callable

from kombu import Connection, Message
from kombu.mixins import ConsumerMixin
from pydantic import ValidationError

from contracts.artifacts import ArtifactNotFound, ArtifactStore
from contracts.events import JobEvent, resolve_texts
from contracts.job_texts import read_text
from contracts.settings import Settings
from coordinator.metrics import observe_event, observe_first_segment
from coordinator.store.repo import JobStore
from pipeline.events import events_queue

log = logging.getLogger(__name__)


class JobWatchers:
    """asyncio events that SSE streams wait on, one set per job; safe to poke from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    def watch(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[job_id].add(event)
        return event

    def unwatch(self, job_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[job_id]

    def poke(self, job_id: str) -> None:
        self._loop.call_soon_threadsafe(self._wake, job_id)

    def _wake(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()


class EventConsumer(ConsumerMixin):
    def __init__(self, settings: Settings, store: JobStore, artifacts: ArtifactStore,
                 changed: Callable[[str], None]) -> None:
        self.connection = Connection(settings.broker.url, connect_timeout=settings.broker.connect_timeout,
                                     heartbeat=30)
        self._queue = events_queue(settings)
        self._store = store
        self._artifacts = artifacts
        self._changed = changed  # wakes the job's event streams (coordinator.notify)
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._store_failures = 0
        self.last_error: str | None = None

    @property
    def healthy(self) -> bool:
        """The thread runs, and the last event it handled reached the store."""
        return self._thread is not None and self._thread.is_alive() and self._store_failures == 0

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        return [Consumer(queues=[self._queue], callbacks=[self._on_message], accept=["json"],
                         prefetch_count=50)]

    def _on_message(self, body: Any, message: Message) -> None:
        try:
            event = JobEvent.model_validate(body)
        except ValidationError as e:
            log.error("dropping a malformed event: %s", e)
            message.ack()
            return
        try:
            event = event.model_copy(update={"data": resolve_texts(event.data, self._read_text)})
            fresh = self._store.apply_event(event)
            if fresh and event.kind == "segment" and event.data.get("segment") == 0:
                self._observe_first_segment(event)
        except Exception as e:  # the store is down: keep the event in the broker and try again
            self._store_failures += 1
            self.last_error = f"{type(e).__name__}: {e}"
            log.warning("could not persist an event of job %s (%s); requeueing", event.job_id, self.last_error)
            self._stopped.wait(min(5.0, 0.25 * 2 ** min(self._store_failures, 5)))
            message.requeue()
            return
        self._store_failures = 0
        message.ack()
        if fresh:
            observe_event(self._store, event)
            self._changed(event.job_id)
        else:
            log.debug("an event of job %s is stored already, or the job is unknown here", event.job_id)

    def _read_text(self, key: str) -> str | None:
        try:
            return read_text(self._artifacts, key)
        except (ArtifactNotFound, ValueError) as e:  # gone with its session, or not a text: the field stays empty
            log.warning("an event names the text artifact %s, which cannot be read (%s)", key, type(e).__name__)
            return None

    def _observe_first_segment(self, event: JobEvent) -> None:
        found = self._store.get_job(event.job_id)
        if found is not None:
            observe_first_segment(found[0], datetime.fromtimestamp(event.at, timezone.utc))

    def _supervise(self) -> None:
        backoff = 0.5
        while not self.should_stop:
            try:
                self.run()
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("the event consumer stopped; starting it again")
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="event-consumer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.should_stop = True
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
