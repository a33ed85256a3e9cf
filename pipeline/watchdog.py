"""Time limits for the ``threads`` and ``solo`` pools, which Celery enforces only in prefork.

The LLM batching and wav2lip GPU workers run tasks as threads of one process.
There Celery ignores ``soft_time_limit`` and ``time_limit``, so a hung backend
would hold its job for ever. ``Watchdog.guard`` registers the running task's
thread: past the soft limit it raises ``SoftTimeLimitExceeded`` inside that
thread (``PyThreadState_SetAsyncExc``: it fires at the thread's next Python
bytecode, so the runner fails the job with ``stage_timeout`` as prefork does);
past the hard limit, a thread still stuck (in native code) gets its job failed
through ``on_hard`` and the process exits, as Celery kills a prefork child: the
worker's supervisor (compose, Kubernetes) starts it again and the unfinished
messages go back to their queues.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from billiard.exceptions import SoftTimeLimitExceeded

log = logging.getLogger(__name__)
EXIT_CODE = 70  # EX_SOFTWARE


@dataclass
class _Guarded:
    soft_at: float
    hard_at: float
    on_hard: Callable[[], None]
    fired: bool = False


def pool_needs_watchdog() -> bool:
    """Whether this worker runs tasks in a pool without Celery's time limits (``pipeline.launch`` says)."""
    return os.environ.get("TALKFARM_WORKER_POOL", "prefork") in ("threads", "solo")


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> bool:
    """Raise ``exception`` in the thread ``thread_id`` at its next bytecode; False if there is no such thread."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))
    return bool(done == 1)


class Watchdog:
    def __init__(self, exit_process: Callable[[int], None] = os._exit) -> None:
        self._exit = exit_process
        self._guarded: dict[int, _Guarded] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, soft_seconds: float, hard_seconds: float, on_hard: Callable[[], None]) -> Iterator[None]:
        """Run the body under the limits (seconds from now)."""
        now = time.monotonic()
        ident = threading.get_ident()
        with self._lock:
            self._guarded[ident] = _Guarded(now + soft_seconds, now + max(hard_seconds, soft_seconds), on_hard)
            self._ensure_running()
            self._changed.notify()
        try:
            yield
        finally:
            with self._lock:
                self._guarded.pop(ident, None)
                self._changed.notify()

    def _ensure_running(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="talkfarm-watchdog", daemon=True)
            self._thread.start()

    def check(self, now: float | None = None) -> None:
        """One round: raise in threads past their soft limit, end the process for one past its hard limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = list(self._guarded.items())
        for ident, guarded in due:
            if now >= guarded.hard_at:
                log.error("a task thread is still running past its hard time limit; ending the worker process")
                try:
                    guarded.on_hard()
                finally:
                    self._exit(EXIT_CODE)
                return
            if now >= guarded.soft_at and not guarded.fired:
                guarded.fired = True
                log.warning("a task ran past its soft time limit; stopping it")
                raise_in_thread(ident, SoftTimeLimitExceeded)

    def _next_deadline(self) -> float | None:
        pending = [g.hard_at if g.fired else g.soft_at for g in self._guarded.values()]
        return min(pending) if pending else None

    def _watch(self) -> None:
        while True:
            with self._lock:
                deadline = self._next_deadline()
                # Wakes when a task starts or ends, or when the nearest limit falls due.
                self._changed.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            self.check()


WATCHDOG = Watchdog()
