"""A tap on a stage: a queue of the test's own beside the stage queue, with a copy of every task published to it.

The stage exchange is a direct exchange, so a second queue bound with the stage's
routing key receives a copy of each message routed to the stage queue. A test reads
what was published (``collect``, by task ID) and can publish a message again,
unchanged (``republish``): to a worker that is a redelivery of the same task, the
same copy (``copy_id``) and attempt.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from kombu import Connection, Queue

from contracts.settings import Settings
from pipeline.app import stages_exchange


@dataclass(frozen=True)
class Tapped:
    """One message as it was published: body and the properties that make it the same task again."""

    body: bytes
    content_type: str
    content_encoding: str
    headers: dict[str, Any]
    priority: int

    @property
    def task_id(self) -> str:
        return str(self.headers.get("id", ""))


class Tap:
    """A copy of every task published to ``stage`` from the moment it is entered; deleted on exit."""

    def __init__(self, settings: Settings, stage: str) -> None:
        self.settings = settings
        self.stage = stage
        self.queue = Queue(settings.queue_name(f"tap.{stage}.{secrets.token_hex(3)}"), stages_exchange(settings),
                           routing_key=stage, durable=False, auto_delete=False)
        self.seen: dict[str, Tapped] = {}

    def _connection(self) -> Connection:
        return Connection(self.settings.broker.url, connect_timeout=self.settings.broker.connect_timeout)

    def collect(self) -> dict[str, Tapped]:
        """Take what the tap holds now into ``seen`` (by task ID; a later copy of a task replaces the earlier);
        return ``seen``."""
        with self._connection() as conn:
            bound = self.queue(conn.channel())
            while (message := bound.get(no_ack=True)) is not None:
                tapped = Tapped(message.body, message.content_type, message.content_encoding,
                                dict(message.headers or {}), int(message.properties.get("priority") or 0))
                self.seen[tapped.task_id] = tapped
        return self.seen

    def republish(self, task_id: str) -> None:
        """Publish the tapped task ``task_id`` to its stage again, unchanged, and wait for the broker's confirm."""
        tapped = self.seen[task_id]
        with Connection(self.settings.broker.url, transport_options={"confirm_publish": True}) as conn:
            conn.Producer().publish(tapped.body, exchange=stages_exchange(self.settings), routing_key=self.stage,
                                    headers=tapped.headers, content_type=tapped.content_type,
                                    content_encoding=tapped.content_encoding, delivery_mode=2,
                                    priority=tapped.priority)

    def __enter__(self) -> Self:
        with self._connection() as conn:
            self.queue(conn.channel()).declare()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            with self._connection() as conn:
                self.queue(conn.channel()).delete()
        except Exception:  # the broker is down (a failed test): a non-durable queue goes with its restart
            pass
