"""Generating several requests together: an in-process batcher.

A worker run with ``--pool threads --concurrency N`` handles N LLM tasks at once
in one process. Each task submits a ``GenerationRequest`` and reads its deltas;
one generation thread collects the requests that wait (for at most
``llm.batch_window_ms`` after the first, up to ``llm.max_batch_size``) and hands
them to the backend as one batch. Requests with different generation options go
into different batches, in arrival order.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

from contracts.errors import StageTimeout, TransientError
from workers.llm.base import GenerationOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestStats:
    """Sizes and times of one request, measured in the generation thread."""

    prompt_tokens: int
    new_tokens: int
    seconds: float  # from the start of its batch to its last token
    first_token_seconds: float | None
    batch_size: int

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


class _End:
    def __init__(self, stats: RequestStats | None) -> None:
        self.stats = stats


_Item = Union[str, _End, BaseException]


@dataclass(eq=False)
class GenerationRequest:
    """One prompt to generate from, and the channel its deltas come back on (a future that streams)."""

    prompt: list[int]
    options: GenerationOptions
    submitted_at: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)
    stats: RequestStats | None = None
    _items: "queue.SimpleQueue[_Item]" = field(default_factory=queue.SimpleQueue)
    _closed: bool = False

    # --- the generation thread's side ----------------------------------------
    def emit(self, delta: str) -> None:
        if delta and not self._closed:
            self._items.put(delta)

    def finish(self, stats: RequestStats | None = None) -> None:
        if not self._closed:
            self._closed = True
            self._items.put(_End(stats))

    def fail(self, error: BaseException) -> None:
        if not self._closed:
            self._closed = True
            self._items.put(error)

    @property
    def closed(self) -> bool:
        return self._closed

    # --- the caller's side ----------------------------------------------------
    def cancel(self) -> None:
        """Ask the generation thread to stop this request (its row leaves the batch)."""
        self.cancelled.set()

    def deltas(self, timeout: float) -> Iterator[str]:
        """The deltas as they come; raises what the generation raised.

        ``timeout`` bounds the wait for each next item. Leaving the loop early cancels the request.
        """
        try:
            while True:
                try:
                    item = self._items.get(timeout=timeout)
                except queue.Empty:
                    raise StageTimeout(f"no LLM output for {timeout:g} s") from None
                if isinstance(item, str):
                    yield item
                elif isinstance(item, _End):
                    self.stats = item.stats
                    return
                else:
                    raise item
        finally:
            self.cancel()


BatchRunner = Callable[[list[GenerationRequest]], None]


class Batcher:
    """Collects waiting requests into batches and runs them, one batch at a time, in its own thread.

    ``run_batch`` must emit each request's deltas and finish it; a request it leaves
    open is finished when it returns, and an exception fails every request of the batch.
    """

    def __init__(self, run_batch: BatchRunner, max_batch: int, window_seconds: float, name: str = "llm") -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.window = max(0.0, window_seconds)
        self._name = name
        self._inbox: "queue.SimpleQueue[GenerationRequest | None]" = queue.SimpleQueue()
        self._waiting: deque[GenerationRequest] = deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []  # every batch run so far (for tests and benchmarks)
        _live.add(self)

    def submit(self, request: GenerationRequest) -> GenerationRequest:
        with self._lock:
            # Started on first use, so that a worker's parent process never holds the thread across a fork.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=f"{self._name}-batcher", daemon=True)
                self._thread.start()
        self._inbox.put(request)
        return request

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._inbox.put(None)
            thread.join(timeout)

    def _next(self, timeout: float | None) -> GenerationRequest | None:
        """The next request, from those put aside first; None on timeout."""
        if self._waiting:
            return self._waiting.popleft()
        try:
            item = self._inbox.get(timeout=timeout) if timeout is None or timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return None
        if item is None:
            raise _Closing
        return item

    def _collect(self, first: GenerationRequest) -> list[GenerationRequest]:
        batch, put_aside = [first], []
        deadline = time.monotonic() + self.window
        while len(batch) < self.max_batch:
            try:
                request = self._next(deadline - time.monotonic())
            except _Closing:
                self._closing = True  # this batch still runs; the loop ends after it
                break
            if request is None:
                break
            if request.cancelled.is_set():
                request.finish()
            elif request.options == first.options:
                batch.append(request)
            else:
                put_aside.append(request)
        self._waiting.extendleft(reversed(put_aside))
        return batch

    def _loop(self) -> None:
        try:
            while not self._closing:
                first = self._next(None)
                if first is None:
                    continue
                if first.cancelled.is_set():
                    first.finish()
                    continue
                self._run(self._collect(first))
        except _Closing:
            pass
        finally:
            self._closing = False
            for request in [*self._waiting, *self._drain()]:
                request.fail(TransientError("the LLM backend was unloaded before it answered"))
            self._waiting.clear()

    def _drain(self) -> list[GenerationRequest]:
        left: list[GenerationRequest] = []
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return left
            if item is not None:
                left.append(item)

    def _run(self, batch: list[GenerationRequest]) -> None:
        self.batch_sizes.append(len(batch))
        log.debug("%s: generating a batch of %d", self._name, len(batch))
        try:
            self._run_batch(batch)
        except BaseException as e:  # handed to the callers, who raise it in their own threads
            if not isinstance(e, Exception):
                log.error("%s batch interrupted: %r", self._name, e)
            for request in batch:
                request.fail(e)
            if not isinstance(e, Exception):
                raise
        finally:
            for request in batch:
                request.finish()


class _Closing(Exception):
    pass


_live: "weakref.WeakSet[Batcher]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # A generation thread still alive while the interpreter finalises can abort it inside torch.
    for batcher in list(_live):
        batcher.close(timeout=5.0)
