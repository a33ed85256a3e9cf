"""The dead-letter queues: what a poison message looks like to an operator, and putting it back.

A stage task that keeps killing its worker is rejected by the runner after
``broker.max_deliveries`` deliveries; the stage queue dead-letters it into
``<stage>.dead`` (its job has failed with ``stage_crashed``). ``talkfarm-admin
dlq list|replay|purge`` reads, re-queues or drops those messages through these
functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from kombu import Connection, Message

from contracts.settings import Settings
from pipeline.app import app, dead_letter_queue_name, stages_exchange
from pipeline.stages import STAGE_NAMES


@dataclass(frozen=True)
class DeadLetter:
    stage: str
    task: str
    task_id: str
    job_id: str
    reason: str


def _letter(stage: str, message: Message) -> DeadLetter:
    headers: dict[str, Any] = message.headers or {}
    deaths = headers.get("x-death") or [{}]
    body = message.decode() if message.body else [[{}]]
    args = body[0] if isinstance(body, (list, tuple)) and body else []
    payload = args[0] if args and isinstance(args[0], dict) else {}
    return DeadLetter(stage=stage, task=str(headers.get("task", "")), task_id=str(headers.get("id", "")),
                      job_id=str(payload.get("job_id", "")), reason=str(deaths[0].get("reason", "")))


def _connection(settings: Settings) -> Connection:
    conn: Connection = app.connection_for_write()
    conn.ensure_connection(max_retries=3, timeout=settings.broker.connect_timeout)
    return conn


def _messages(conn: Connection, settings: Settings, stage: str) -> Iterator[Message]:
    queue = conn.SimpleQueue(dead_letter_queue_name(settings, stage), no_ack=False)
    try:
        while True:
            try:
                yield queue.get(block=False)
            except queue.Empty:
                return
    finally:
        queue.close()


def list_letters(settings: Settings, stages: tuple[str, ...] = STAGE_NAMES) -> list[DeadLetter]:
    """Every dead letter, left in its queue."""
    letters: list[DeadLetter] = []
    for stage in stages:
        with _connection(settings) as conn:  # closing the channel puts the unacknowledged messages back
            letters += [_letter(stage, message) for message in _messages(conn, settings, stage)]
    return letters


def take_letters(settings: Settings, stage: str, job_id: str | None, replay: bool) -> list[DeadLetter]:
    """Remove the stage's dead letters (of ``job_id`` only, if given); with ``replay`` publish each back onto
    the stage queue first, unchanged. Returns what was taken."""
    taken: list[DeadLetter] = []
    with _connection(settings) as conn:
        producer = conn.Producer()
        for message in _messages(conn, settings, stage):
            letter = _letter(stage, message)
            if job_id is not None and letter.job_id != job_id:
                continue
            if replay:
                headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
                producer.publish(message.body, exchange=stages_exchange(settings), routing_key=stage,
                                 headers=headers, content_type=message.content_type,
                                 content_encoding=message.content_encoding, delivery_mode=2,
                                 priority=message.properties.get("priority", 0))
            message.ack()
            taken.append(letter)
    return taken
