"""One inference thread per worker process that packs the frames of every active render into batches.

A GPU worker runs several renders at once (Celery ``--pool threads``, one process per
GPU). Each render thread does its own CPU work (mel windows, crops, paste-back,
encoding) and hands chunks of frames to the process's ``FrameBatcher`` with
``submit``, getting a ``Future`` back. The batcher's single thread takes chunks in
arrival order and packs rows of as many of them as fit into one forward pass of at
most ``batch_size`` frames, splitting a chunk across two batches where needed; each
future resolves to its own chunk's outputs, in order, once all its rows have run.
So a lone render fills batches by itself, and short renders (a sentence each) share
them. ``max_wait`` lets the thread wait briefly for more frames when a batch is not
full, trading a little latency for fuller batches.

The network (``infer``) is only ever called from the batcher's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

Infer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class _Chunk:
    mel: np.ndarray
    face: np.ndarray
    future: Future[np.ndarray]
    taken: int = 0  # rows handed to a batch so far
    outputs: list[np.ndarray] = field(default_factory=list)
    received: int = 0  # rows whose outputs came back
    started: bool = False

    @property
    def rows(self) -> int:
        return int(self.mel.shape[0])


@dataclass
class BatcherStats:
    """Counters since start: forward passes, frames through them, and passes that mixed chunks."""

    batches: int = 0
    frames: int = 0
    shared_batches: int = 0  # batches holding rows of more than one chunk
    max_batch: int = 0


class FrameBatcher:
    """Serve ``infer(mel, face)`` to many threads through shared batches of at most ``batch_size``."""

    def __init__(self, infer: Infer, batch_size: int, max_wait: float = 0.0, name: str = "wav2lip-batcher") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._infer = infer
        self.batch_size = batch_size
        self.max_wait = max(0.0, max_wait)
        self.stats = BatcherStats()
        self._pending: deque[_Chunk] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, mel: np.ndarray, face: np.ndarray) -> Future[np.ndarray]:
        """Queue a chunk: ``mel`` (n, 1, 80, 16) and ``face`` (n, 6, S, S); the future gives (n, 3, S, S)."""
        if mel.shape[0] != face.shape[0] or mel.shape[0] == 0:
            raise ValueError(f"a chunk needs as many faces as mel windows (> 0): {face.shape[0]}, {mel.shape[0]}")
        chunk = _Chunk(mel, face, Future())
        with self._cond:
            if self._closed:
                raise RuntimeError("the frame batcher is closed")
            self._pending.append(chunk)
            self._queued_rows += chunk.rows
            self._cond.notify_all()
        return chunk.future

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking chunks, finish the ones queued, and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[tuple[_Chunk, int, int]] | None:
        """Rows for the next batch, as (chunk, start, end) slices; None once closed and drained."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            if self.max_wait and self._queued_rows < self.batch_size and not self._closed:
                deadline = time.monotonic() + self.max_wait
                while self._queued_rows < self.batch_size and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            parts: list[tuple[_Chunk, int, int]] = []
            room = self.batch_size
            while self._pending and room:
                chunk = self._pending[0]
                if not chunk.started:
                    chunk.started = True
                    if not chunk.future.set_running_or_notify_cancel():  # the render gave up on it
                        self._pending.popleft()
                        self._queued_rows -= chunk.rows
                        continue
                elif chunk.future.done():  # failed in an earlier batch
                    self._pending.popleft()
                    self._queued_rows -= chunk.rows - chunk.taken
                    continue
                count = min(room, chunk.rows - chunk.taken)
                parts.append((chunk, chunk.taken, chunk.taken + count))
                chunk.taken += count
                room -= count
                self._queued_rows -= count
                if chunk.taken == chunk.rows:
                    self._pending.popleft()
            return parts

    def _loop(self) -> None:
        while True:
            parts = self._take()
            if parts is None:
                return
            if not parts:
                continue
            if len(parts) == 1:
                chunk, start, end = parts[0]
                mel, face = chunk.mel[start:end], chunk.face[start:end]
            else:
                mel = np.concatenate([c.mel[s:e] for c, s, e in parts])
                face = np.concatenate([c.face[s:e] for c, s, e in parts])
            try:
                out = self._infer(mel, face)
            except Exception as e:  # handed to the renders waiting on these chunks
                for chunk, _, _ in parts:
                    if not chunk.future.done():
                        chunk.future.set_exception(e)
                continue
            self._count(parts, len(mel))
            offset = 0
            for chunk, start, end in parts:
                rows = end - start
                chunk.outputs.append(out[offset:offset + rows])
                chunk.received += rows
                offset += rows
                if chunk.received == chunk.rows and not chunk.future.done():
                    whole = chunk.outputs[0] if len(chunk.outputs) == 1 else np.concatenate(chunk.outputs)
                    chunk.future.set_result(whole)

    def _count(self, parts: list[tuple[_Chunk, int, int]], frames: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.frames += frames
        stats.max_batch = max(stats.max_batch, frames)
        if len({id(chunk) for chunk, _, _ in parts}) > 1:
            stats.shared_batches += 1
