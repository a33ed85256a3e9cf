"""Queue depths for Prometheus: every stage queue and its dead-letter queue, read from the broker at scrape time.

The coordinator registers ``QueueCollector`` (one per process) so that its
``/metrics`` carries, per stage and queue kind (``work``: ``<prefix><stage>``;
``dead``: ``<prefix><stage>.dead``, where poison tasks end):

    talkfarm_queue_depth_messages{stage,kind}   messages ready in the queue
    talkfarm_queue_consumers{stage,kind}        consumers attached (workers of the stage)
    talkfarm_broker_up                          1 when the broker answered the last read

A queue nobody has declared yet has no sample. Reads are passive declares over
one short connection, kept for ``metrics.queue_depth_cache_seconds`` so that
several scrapers do not multiply broker round trips.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

from kombu import Connection

from contracts.settings import Settings
from pipeline.stages import STAGES

log = logging.getLogger(__name__)
KINDS = {"work": "{stage}", "dead": "{stage}.dead"}


@dataclass(frozen=True)
class QueueReading:
    stage: str
    kind: str
    messages: int
    consumers: int


def read_queues(settings: Settings) -> list[QueueReading]:
    """Depth and consumers of every stage queue and dead-letter queue that exists."""
    readings = []
    with Connection(settings.broker.url, connect_timeout=settings.broker.connect_timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.broker.connect_timeout)
        channel = conn.channel()
        try:
            for spec in STAGES.values():
                for kind, pattern in KINDS.items():
                    name = settings.queue_name(pattern.format(stage=spec.queue))
                    try:
                        ok = channel.queue_declare(name, passive=True)
                    except Exception:  # NotFound closes the channel: the queue is not declared (yet)
                        channel = conn.channel()
                        continue
                    readings.append(QueueReading(spec.name, kind, ok.message_count, ok.consumer_count))
        finally:
            try:
                channel.close()
            except Exception:
                pass
    return readings


class QueueCollector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._cached: tuple[float, list[QueueReading] | None] = (float("-inf"), None)

    def readings(self) -> list[QueueReading] | None:
        with self._lock:
            at, cached = self._cached
            if time.monotonic() - at < self.settings.metrics.queue_depth_cache_seconds:
                return cached
            try:
                cached = read_queues(self.settings)
            except Exception as e:
                log.warning("cannot read the queue depths: %s", e)
                cached = None
            self._cached = (time.monotonic(), cached)
            return cached

    def describe(self) -> Iterable[Any]:
        """The families without samples (registering reads no queue)."""
        return self._families(None)

    def collect(self) -> Iterable[Any]:
        return self._families(self.readings())

    def _families(self, readings: list[QueueReading] | None) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("talkfarm_broker_up", "1 when the broker answered the last queue read")
        up.add_metric([], 0.0 if readings is None else 1.0)
        yield up
        depth = GaugeMetricFamily("talkfarm_queue_depth_messages", "Messages ready in a stage queue",
                                  labels=["stage", "kind"])
        consumers = GaugeMetricFamily("talkfarm_queue_consumers", "Consumers of a stage queue",
                                      labels=["stage", "kind"])
        for reading in readings or []:
            depth.add_metric([reading.stage, reading.kind], reading.messages)
            consumers.add_metric([reading.stage, reading.kind], reading.consumers)
        yield depth
        yield consumers
