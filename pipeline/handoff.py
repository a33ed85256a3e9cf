"""Retrying the steps around a stage's work through outages of the broker, Redis and the shared disk.

A step (publish an event or the next stage, write the ledger) that fails with an
error of the infrastructure is tried again with exponential backoff and full
jitter until its time budget is spent; then ``HandoffFailed`` says so and the
runner decides (fail the job, or give the message back to its queue). A full
queue (``QueueFull``) is retried the same way and reported as itself. Anything
else is a bug and propagates at once.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

import amqp.exceptions
import kombu.exceptions
import redis

from pipeline.dispatch import QueueFull

log = logging.getLogger(__name__)
T = TypeVar("T")

# What an outage of the broker, Redis or the shared disk raises.
OUTAGES: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError, amqp.exceptions.RecoverableConnectionError,
    amqp.exceptions.RecoverableChannelError, amqp.exceptions.ConnectionError, redis.RedisError,
    ConnectionError, TimeoutError, OSError, QueueFull,
)


class HandoffFailed(Exception):
    """A step kept failing through its whole time budget."""


def retrying(what: str, action: Callable[[], T], budget_seconds: float, base: float = 0.2,
             cap: float = 5.0) -> T:
    """``action()``, tried again through outages until ``budget_seconds`` have passed."""
    deadline = time.monotonic() + budget_seconds
    attempt = 0
    while True:
        try:
            return action()
        except OUTAGES as e:
            attempt += 1
            pause = random.uniform(0, min(cap, base * 2**attempt))
            if time.monotonic() + pause > deadline:
                if isinstance(e, QueueFull):
                    raise
                raise HandoffFailed(f"{what} failed {attempt} times: {type(e).__name__}: {e}") from e
            log.warning("%s failed (%s: %s); trying again in %.1f s", what, type(e).__name__, e, pause)
            time.sleep(pause)  # backoff between attempts, not a stand-in for an event
