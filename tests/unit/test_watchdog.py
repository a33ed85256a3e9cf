"""The watchdog gives threads and solo pools the time limits Celery keeps only in prefork."""

from __future__ import annotations

import threading
import time

import pytest
from billiard.exceptions import SoftTimeLimitExceeded

from pipeline.watchdog import Watchdog

pytestmark = pytest.mark.unit


def busy(stop: threading.Event, seconds: float) -> None:
    """Python work (the soft limit fires at the next bytecode), bounded so a broken watchdog fails the test."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        sum(range(1000))


def test_the_soft_limit_stops_a_task_thread_with_soft_time_limit_exceeded() -> None:
    exits: list[int] = []
    dog = Watchdog(exit_process=exits.append)
    outcome: list[str] = []
    stop = threading.Event()

    def task() -> None:
        try:
            with dog.guard(soft_seconds=0.3, hard_seconds=30, on_hard=lambda: None):
                busy(stop, 10)
            outcome.append("finished")
        except SoftTimeLimitExceeded:
            outcome.append("stopped")

    started = time.monotonic()
    thread = threading.Thread(target=task)
    thread.start()
    thread.join(timeout=10)
    stop.set()
    assert outcome == ["stopped"] and exits == []
    assert 0.25 < time.monotonic() - started < 5


def test_a_task_that_ends_in_time_is_left_alone() -> None:
    exits: list[int] = []
    dog = Watchdog(exit_process=exits.append)
    with dog.guard(soft_seconds=5, hard_seconds=10, on_hard=lambda: None):
        pass
    dog.check(now=time.monotonic() + 60)  # long after: nothing is guarded any more
    assert exits == []


def test_past_the_hard_limit_the_job_is_failed_and_the_process_ends() -> None:
    exits: list[int] = []
    hard: list[str] = []
    dog = Watchdog(exit_process=exits.append)
    reached = threading.Event()
    release = threading.Event()

    def stuck() -> None:  # as if blocked in native code: only the hard limit helps
        try:
            with dog.guard(soft_seconds=100, hard_seconds=200, on_hard=lambda: hard.append("failed")):
                reached.set()
                release.wait(10)
        except SoftTimeLimitExceeded:
            pass

    thread = threading.Thread(target=stuck)
    thread.start()
    assert reached.wait(5)
    dog.check(now=time.monotonic() + 300)
    release.set()
    thread.join(timeout=5)
    assert hard == ["failed"] and exits == [70]
