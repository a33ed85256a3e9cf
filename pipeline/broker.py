"""What the coordinator asks the broker: is it there, and how long are the stage queues."""

from __future__ import annotations

import time

from contracts.settings import Settings
from pipeline.app import app
from pipeline.stages import STAGES


def ping(settings: Settings) -> None:
    """Raise when the broker cannot be reached within the connect timeout."""
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.broker.connect_timeout)


class Backlog:
    """Queue depth of the stage queues, read from the broker at most once a second."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._depth: dict[str, int] = {}
        self._read_at = float("-inf")

    def depth(self, stage: str) -> int:
        if time.monotonic() - self._read_at > 1.0:
            self._depth = queue_depths(self._settings)
            self._read_at = time.monotonic()
        return self._depth.get(stage, 0)


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting in each stage queue (0 for a queue no worker has declared yet)."""
    depths: dict[str, int] = {}
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.broker.connect_timeout)
        channel = conn.default_channel
        for spec in STAGES.values():
            try:
                depths[spec.name] = channel.queue_declare(settings.queue_name(spec.queue), passive=True).message_count
            except Exception:  # amqp's NotFound closes the channel: the queue is not declared yet
                channel = conn.channel()
                depths[spec.name] = 0
    return depths
