"""Queue depth per stage over a load run: a thread asks RabbitMQ every second (a passive queue declare).

Sampled: each stage queue of the farm (``pipeline.stages``) and the events queue,
whose depth is the coordinator's backlog of worker events not yet in the store.
A queue that is not declared yet counts 0; a sample the broker did not answer is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Self

from kombu import Connection

from contracts.settings import Settings
from pipeline.events import events_queue
from pipeline.stages import STAGES

log = logging.getLogger(__name__)


def queue_names(settings: Settings) -> dict[str, str]:
    """Column name → queue name: every stage queue, then ``events``."""
    names: dict[str, str] = {spec.name: settings.queue_name(spec.queue) for spec in STAGES.values()}
    names["events"] = events_queue(settings).name
    return names


class QueueSampler:
    """Samples every ``every`` seconds from ``__enter__`` to ``__exit__``; ``samples``: ``{"t": s, stage: n}``."""

    def __init__(self, settings: Settings, every: float = 1.0) -> None:
        self._url = settings.broker.url
        self._names = queue_names(settings)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-sampler", daemon=True)
        self.started = time.time()
        self.samples: list[dict[str, float]] = []

    def _depths(self, conn: Any) -> dict[str, float]:
        depths: dict[str, float] = {}
        channel = conn.channel()
        for column, queue in self._names.items():
            try:
                depths[column] = channel.queue_declare(queue, passive=True).message_count
            except Exception:  # not declared yet: the broker closed the channel
                depths[column] = 0
                channel = conn.channel()
        channel.close()
        return depths

    def _run(self) -> None:
        conn = Connection(self._url, connect_timeout=5)
        try:
            while not self._stop.is_set():
                at = time.time()
                try:
                    self.samples.append({"t": round(at - self.started, 2), **self._depths(conn)})
                except Exception as e:  # the broker did not answer: skip this sample, connect again
                    log.warning("queue depth not sampled: %s", e)
                    conn.release()
                    conn = Connection(self._url, connect_timeout=5)
                self._stop.wait(max(0.0, self._every - (time.time() - at)))
        finally:
            conn.release()

    def __enter__(self) -> Self:
        self.started = time.time()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
