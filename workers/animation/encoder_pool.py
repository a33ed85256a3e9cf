"""H.264 encoding in a pool of processes, one per core, x264 one thread each: no GIL serialises the encoders.

A GPU worker renders frames far faster than one Python process can encode them:
x264 and the colour conversion run under PyAV's calls, and the frames of every
render of the process would queue on one interpreter. So each render's video is
written by one process of an ``EncoderPool`` (the least busy one when the render
opens), and a process encodes the frames of its renders in turn, one frame at a
time, a render's first frame before anything else.

What travels per frame is only the face region that changed: the pool process
holds the portrait from the render's opening, converted once to YUV 4:2:0, and per
frame converts only the face region (its box widened to even rows and columns, so
that it covers whole chroma blocks: the result is exactly the whole frame's
conversion) and drops it into the YUV frame that x264 encodes. The colour
conversion of a whole 512 px frame costs about as much as x264 itself; the
region's costs a hundredth of that. The speech is encoded with FFmpeg's ``fast``
AAC coder (its default costs as much per frame as x264). The
regions pass through a ring of ``frames`` slots in shared memory (``FrameRing``,
a file under ``/dev/shm`` that both sides map; the parent unlinks it as soon as the
child has it open, so a crash leaks nothing); the pipe carries only "frames up to
N are in the ring". The ring's header holds how many frames the child has encoded,
which tells the parent which slots are free again (``EncodeHandle.encoded``).

Each process runs on one thread: x264 on one, and OpenCV's own thread pool (one
thread per core by default) capped at ``opencv_threads``, since a pool per process
woke a dozen threads for every frame's small region conversion.

Messages to a process go through its own sender thread, in order: a render opening its
video (the portrait and the speech, a megabyte or so, which the process reads between two
frames) or telling it of new frames never waits for the pipe, so neither a segment's
setup nor the render engine's drain thread blocks behind a busy encoder process.

Processes are started with ``spawn`` (the parent holds a CUDA context, which must
not be forked) and import only numpy, OpenCV and PyAV. A process that dies fails its
renders with a transient error and is replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import tempfile
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from contracts.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

HEADER_BYTES = 64  # int64 frames encoded, float64 monotonic time of the first one, padding


def default_processes() -> int:
    """One encoder process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _ring_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class FrameRing:
    """``frames`` slots of one region shape in a shared file, behind a small header."""

    def __init__(self, path: str, shape: tuple[int, int, int], frames: int, create: bool) -> None:
        self.path = path
        self.shape = shape
        self.frames = frames
        slot = int(np.prod(shape))
        size = HEADER_BYTES + slot * frames
        if create:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                # Reserve the pages now: a full tmpfs fails here, not with SIGBUS on a later write.
                os.posix_fallocate(fd, 0, size)
            except OSError:
                os.close(fd)
                os.unlink(path)
                raise
            os.close(fd)
        self._map = np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))
        self._count = self._map[:8].view(np.int64)
        self._first = self._map[8:16].view(np.float64)
        self.slots = self._map[HEADER_BYTES:].reshape(frames, *shape)

    @classmethod
    def create(cls, shape: tuple[int, int, int], frames: int) -> FrameRing:
        path = os.path.join(_ring_dir(), f"talkfarm-frames-{uuid.uuid4().hex}")
        return cls(path, shape, frames, create=True)

    @property
    def encoded(self) -> int:
        return int(self._count[0])

    @property
    def first_encoded_at(self) -> float:
        return float(self._first[0])

    def mark_encoded(self, count: int) -> None:
        if count == 1:
            self._first[0] = time.monotonic()
        self._count[0] = count

    def unlink(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self._map._mmap.close()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EncodeSpec:
    """One video: where it goes, the portrait the regions are dropped into, the speech and x264's settings."""

    output: str
    image: np.ndarray  # BGR uint8 (height, width, 3): every pixel outside the region
    box: tuple[int, int, int, int]  # left, top, right, bottom of the region
    fps: int
    audio: np.ndarray
    sample_rate: int
    crf: int = 20
    preset: str = "veryfast"
    aac_coder: str = "fast"
    tune: str = ""  # x264's --tune, "" for none


@dataclass(frozen=True)
class EncodeResult:
    frames: int
    first_encoded_at: float  # time.monotonic() in the pool process (the same clock system-wide)
    encode_seconds: float  # time inside x264 and the muxer for this video


class EncodeHandle:
    """The parent's side of one video being encoded; ``result`` resolves when the file is complete."""

    def __init__(self, pool: EncoderPool, key: int, process: int, ring: FrameRing, total: int) -> None:
        self._pool = pool
        self.key = key
        self.process = process
        self.ring = ring
        self.total = total
        self.sent = 0
        self.result: Future[EncodeResult] = Future()
        self._lock = threading.Lock()  # the ring is unmapped under it once the video has ended
        self._ended = False

    @property
    def encoded(self) -> int:
        with self._lock:
            return self.total if self._ended else self.ring.encoded

    def end(self) -> None:
        """Unmap the ring (the video is complete, failed or aborted)."""
        with self._lock:
            if not self._ended:
                self._ended = True
                self.ring.unlink()
                self.ring.close()

    def write(self, start: int, regions: np.ndarray) -> None:
        """Put frames ``start``… (regions ``(n, h, w, 3)``) in their ring slots and tell the encoder."""
        if start != self.sent:
            raise ValueError(f"frames must arrive in order: got {start}, expected {self.sent}")
        count = len(regions)
        with self._lock:
            if self._ended:
                return  # aborted meanwhile: the frames have nowhere to go
            if start + count > self.ring.encoded + self.ring.frames:
                raise ValueError("the ring is full: the encoder has not freed these slots yet")
            slot = start % self.ring.frames
            first = min(count, self.ring.frames - slot)
            self.ring.slots[slot:slot + first] = regions[:first]
            if first < count:
                self.ring.slots[:count - first] = regions[first:]
            self.sent = start + count
        self._pool._send(self.process, ("frames", self.key, self.sent))

    def abort(self, error: BaseException | None = None) -> None:
        """Stop encoding and remove the partial file; ``result`` fails with ``error``."""
        if not self.result.done():
            self.result.set_exception(error or TransientError("the render was aborted"))
        self._pool._forget(self, ("abort", self.key))


class EncoderPool:
    """``processes`` encoder processes (0: one per core) that write H.264 + AAC MP4 files.

    ``opencv_threads`` caps OpenCV's thread pool in each process (0: OpenCV's default, a thread per core).
    """

    def __init__(self, processes: int = 0, opencv_threads: int = 1) -> None:
        self.size = processes or default_processes()
        self.opencv_threads = opencv_threads
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._send_locks: list[threading.Lock] = []
        self._outboxes: list[queue.SimpleQueue[tuple[Any, ...] | None]] = []
        self._senders: list[threading.Thread] = []
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._handles: dict[int, EncodeHandle] = {}
        self._next_key = 0
        self._closed = False
        for index in range(self.size):
            self._start(index)
        self._listener = threading.Thread(target=self._listen, name="encoder-pool", daemon=True)
        self._listener.start()

    def _start(self, index: int) -> None:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=serve, args=(child, self.opencv_threads),
                                        name=f"talkfarm-encoder-{index}", daemon=True)
        process.start()
        child.close()
        if index < len(self._conns):
            self._conns[index], self._procs[index] = parent, process
        else:
            self._conns.append(parent)
            self._procs.append(process)
            self._send_locks.append(threading.Lock())
            self._outboxes.append(queue.SimpleQueue())
            sender = threading.Thread(target=self._sender, args=(index,), name=f"encoder-send-{index}", daemon=True)
            self._senders.append(sender)
            sender.start()

    def load(self) -> list[int]:
        """Open videos per process."""
        with self._lock:
            counts = [0] * self.size
            for handle in self._handles.values():
                counts[handle.process] += 1
            return counts

    def open(self, spec: EncodeSpec, region: tuple[int, int, int], total: int, frames_ahead: int) -> EncodeHandle:
        """Start a video of ``total`` frames on the least busy process, with a ring of ``frames_ahead`` slots."""
        if total < 1:
            raise ValueError("a video needs at least one frame")
        try:
            ring = FrameRing.create(region, max(1, frames_ahead))
        except OSError as e:
            raise TransientError(f"no shared memory for the frames of a render: {e}") from e
        with self._lock:
            if self._closed:
                ring.unlink()
                raise RuntimeError("the encoder pool is closed")
            counts = [0] * self.size
            for other in self._handles.values():
                counts[other.process] += 1
            process = min(range(self.size), key=lambda i: (counts[i], i))
            key = self._next_key
            self._next_key += 1
            handle = EncodeHandle(self, key, process, ring, total)
            self._handles[key] = handle
        # Sent by the process's sender thread: the frames can go into the ring meanwhile. Should the process be
        # dead, the listener fails this video with the others of that process.
        self._send(process, ("open", key, spec, ring.path, region, ring.frames, total))
        return handle

    def close(self) -> None:
        """Stop every process (open videos are aborted)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            handles = list(self._handles.values())
        for handle in handles:
            handle.abort(TransientError("the encoder pool is closing"))
        for index in range(self.size):
            try:
                self._send(index, ("stop",))
            except (OSError, ValueError):
                pass
        for process in self._procs:
            process.join(5)
            if process.is_alive():
                process.kill()
        for outbox in self._outboxes:
            outbox.put(None)
        self._listener.join(5)

    def _send(self, process: int, message: tuple[Any, ...]) -> None:
        """Queue ``message`` for ``process``; its sender thread sends it after those queued before."""
        self._outboxes[process].put(message)

    def _sender(self, process: int) -> None:
        outbox = self._outboxes[process]
        while True:
            message = outbox.get()
            if message is None:
                return
            try:
                with self._send_locks[process]:
                    self._conns[process].send(message)
            except (OSError, ValueError):  # the process is gone: the listener fails its videos and replaces it
                pass

    def _forget(self, handle: EncodeHandle, message: tuple[Any, ...] | None = None) -> None:
        with self._lock:
            known = self._handles.pop(handle.key, None) is not None
        if known and message is not None:
            try:
                self._send(handle.process, message)
            except (OSError, ValueError):
                pass
        if known:
            handle.end()

    def _listen(self) -> None:
        while True:
            with self._lock:
                if self._closed and not any(p.is_alive() for p in self._procs):
                    return
                conns = list(self._conns)
            for ready in wait(conns, timeout=0.5):
                index = conns.index(ready)  # type: ignore[arg-type]
                try:
                    message = conns[index].recv()
                except (EOFError, OSError):
                    self._lost(index)
                    continue
                self._handle_reply(message)

    def _handle_reply(self, message: tuple[Any, ...]) -> None:
        kind, key = message[0], message[1]
        with self._lock:
            handle = self._handles.get(key)
        if handle is None:
            return
        if kind == "opened":
            with handle._lock:
                if not handle._ended:
                    handle.ring.unlink()  # both sides have it mapped; the name is no longer needed
        elif kind == "done":
            self._forget(handle)
            if not handle.result.done():
                handle.result.set_result(message[2])
        elif kind == "failed":
            self._forget(handle)
            text, transient = message[2], message[3]
            error = TransientError(text) if transient else PermanentError(text, code="encode_failed")
            if not handle.result.done():
                handle.result.set_exception(error)

    def _lost(self, index: int) -> None:
        """A process died: fail its videos and start a replacement (unless the pool is closing)."""
        with self._lock:
            lost = [h for h in self._handles.values() if h.process == index]
            closing = self._closed
        if not closing:
            log.error("encoder process %d died (exit code %s); starting another", index,
                      self._procs[index].exitcode)
            with self._send_locks[index]:
                self._start(index)
        for handle in lost:
            self._forget(handle)
            if not handle.result.done():
                handle.result.set_exception(TransientError("an encoder process died"))


# ---- the pool process ----

class _Video:
    """One video inside a pool process."""

    def __init__(self, key: int, spec: EncodeSpec, ring: FrameRing, total: int) -> None:
        import cv2

        from workers.animation.encoder import VideoWriter

        self._cv2 = cv2
        self.key = key
        self.ring = ring
        self.total = total
        self.available = 0
        self.encoded = 0
        self.seconds = 0.0
        self.first_encoded_at = 0.0
        height, width = spec.image.shape[:2]
        left, top, right, bottom = spec.box
        self.inner = (slice(top, bottom), slice(left, right))
        # The region widened to even edges covers whole 2x2 chroma blocks; its extra pixels are the portrait's.
        top, left = top - top % 2, left - left % 2
        bottom, right = min(height, bottom + bottom % 2), min(width, right + right % 2)
        self.outer = (top, left, bottom, right)
        self.scratch = np.ascontiguousarray(spec.image[top:bottom, left:right])
        self.window = self.scratch[spec.box[1] - top:spec.box[3] - top, spec.box[0] - left:spec.box[2] - left]
        self.yuv = cv2.cvtColor(np.ascontiguousarray(spec.image), cv2.COLOR_BGR2YUV_I420)
        flat = self.yuv.reshape(-1)
        area = height * width
        self.planes = (flat[:area].reshape(height, width),
                       flat[area:area + area // 4].reshape(height // 2, width // 2),
                       flat[area + area // 4:].reshape(height // 2, width // 2))
        # x264 on one thread: the pool's parallelism is one process per core.
        self.writer = VideoWriter(Path(spec.output), width, height, spec.fps, spec.audio, spec.sample_rate,
                                  crf=spec.crf, preset=spec.preset, tune=spec.tune, threads=1,
                                  aac_coder=spec.aac_coder)
        if self.writer.frames_total != total:
            raise ValueError(f"the speech covers {self.writer.frames_total} frames, the render has {total}")
        self.writer.open()

    def _patch(self, region: np.ndarray) -> None:
        """Put ``region`` (BGR) into the YUV frame: convert its even-edged surroundings, copy the planes."""
        self.window[...] = region
        top, left, bottom, right = self.outer
        rows, cols = bottom - top, right - left
        converted = self._cv2.cvtColor(self.scratch, self._cv2.COLOR_BGR2YUV_I420).reshape(-1)
        area = rows * cols
        y, u, v = self.planes
        y[top:bottom, left:right] = converted[:area].reshape(rows, cols)
        u[top // 2:bottom // 2, left // 2:right // 2] = converted[area:area + area // 4].reshape(rows // 2, cols // 2)
        v[top // 2:bottom // 2, left // 2:right // 2] = converted[area + area // 4:].reshape(rows // 2, cols // 2)

    def encode_next(self) -> None:
        started = time.perf_counter()
        self._patch(self.ring.slots[self.encoded % self.ring.frames])
        self.writer.write_i420(self.yuv)
        self.encoded += 1
        self.seconds += time.perf_counter() - started
        self.ring.mark_encoded(self.encoded)
        if self.encoded == 1:
            self.first_encoded_at = self.ring.first_encoded_at

    def finish(self) -> EncodeResult:
        started = time.perf_counter()
        self.writer.close()
        self.seconds += time.perf_counter() - started
        self.ring.close()
        return EncodeResult(frames=self.encoded, first_encoded_at=self.first_encoded_at, encode_seconds=self.seconds)

    def abort(self) -> None:
        self.writer.abort()
        self.ring.close()


def serve(conn: Connection, opencv_threads: int = 1) -> None:
    """A pool process: open, feed and finish videos as the parent says; one frame at a time, round robin."""
    if opencv_threads > 0:
        import cv2

        cv2.setNumThreads(opencv_threads)
    videos: dict[int, _Video] = {}
    turn: deque[int] = deque()  # round-robin order of the videos

    def fail(key: int, error: BaseException) -> None:
        video = videos.pop(key, None)
        if video is not None:
            try:
                video.abort()
            except Exception:  # the error that matters is the one reported
                pass
        transient = isinstance(error, (OSError, MemoryError))
        conn.send(("failed", key, f"encoding failed: {type(error).__name__}: {error}", transient))

    def handle(message: tuple[Any, ...]) -> bool:
        kind = message[0]
        if kind == "stop":
            return False
        key = message[1]
        if kind == "open":
            _, _, spec, path, region, frames, total = message
            try:
                ring = FrameRing(path, region, frames, create=False)
                videos[key] = _Video(key, spec, ring, total)
                turn.append(key)
                conn.send(("opened", key))
            except Exception as e:  # reported to the render, which fails with it
                fail(key, e)
        elif kind == "frames" and key in videos:
            videos[key].available = message[2]
        elif kind == "abort" and key in videos:
            videos.pop(key).abort()
        return True

    running = True
    while running:
        ready = [v for v in videos.values() if v.encoded < v.available]
        if conn.poll(0 if ready else 0.2):
            while running and conn.poll(0):
                try:
                    running = handle(conn.recv())
                except EOFError:
                    running = False
            continue
        if not ready:
            continue
        video = next((v for v in ready if v.encoded == 0), None)  # a render's first frame goes first
        while video is None and turn:
            turn.rotate(-1)
            candidate = videos.get(turn[0])
            if candidate is None:
                turn.popleft()  # ended meanwhile
            elif candidate.encoded < candidate.available:
                video = candidate
        if video is None:
            continue
        try:
            video.encode_next()
            if video.encoded == video.total:
                result = videos.pop(video.key).finish()
                conn.send(("done", video.key, result))
        except Exception as e:  # one bad video must not stop the others
            fail(video.key, e)
    for video in videos.values():
        video.abort()
