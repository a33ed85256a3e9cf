"""The pooled wav2lip renderer: one feeder thread keeps the GPU busy, a pool of processes encodes.

Render threads (a Celery ``--pool threads`` worker runs many) call ``render``:
it uploads what is constant for the whole render once — the 6-channel face input,
the portrait's face region and the blend mask (``torch_paste.PasteTarget``) —
opens the video on the least busy encoder process, adds the render to the
``BatchPlanner`` and waits for the encoder to finish the file.

A segment's first frame waits for as little of the render process's Python as
possible, since every render thread of the process shares one GIL and a wave of
segments that start together queues for it:

* Mel windows may come as ``mel.SegmentWindows``: only the first batch's windows are
  computed before the render is planned, from the speech alone in one of a few
  processes kept for first windows (``mel_first_processes``; resampling included, no
  GIL of ours, never queued behind bulk work), or by the render thread itself
  (``mel_first_processes=0``); the rest afterwards in another small pool of processes
  (``mel_processes``), or by the render thread once its first batch is planned
  (``mel_processes=0``). The planner gives a render no more frames than it has
  windows for.
* What still runs on the render thread before its render is planned (the setup
  below) runs in one of ``setup_slots`` slots: a few renders at a time, each quickly,
  rather than a wave of them all at once, each slowly, with the feeder waiting for
  the GIL behind them.
* The encoder's opening (the portrait and the speech go to its process) is queued to
  that process's sender thread (``encoder_pool``): no render waits for a busy encoder.
* A batch's parts that share an upload are one face copy and one paste-back.
* What a render uploads depends only on its face box, the portrait inside it and the
  mask, so it is kept per those (``setup_cache`` entries, keyed by a hash of them):
  a stream's next segments, and other streams of the same portrait, upload nothing.
  Uploads go through pinned memory without waiting: a pageable copy on the default
  stream waited behind every batch the GPU had queued.
* The feeder takes its in-flight slot before it plans a batch, not after: a segment
  that arrives while the GPU is busy still makes the next batch's first frames.

The feeder thread plans a batch (first frames of new renders first, then fair
shares; see ``planner``), copies the batch's mel windows into a pinned buffer and
uploads them asynchronously, gathers the batch's faces on the device from the
renders' uploaded faces, runs the network (fp16, channels_last, compiled; see
``network``), pastes every frame back on the device and starts the copy of the
face regions (uint8, every render's regions of the batch side by side in one
device buffer) to one pinned host buffer on a second CUDA stream: one copy per
batch, whatever the number of renders in it. It moves on to the next batch at
once: the download of one batch overlaps the network on the next. A drain thread
waits for each download, puts the regions in their renders' shared-memory rings
and tells the encoders. Both threads wait on CUDA events that sleep (blocking
sync): CUDA's default is to spin, which kept a core busy in the drain thread for
as long as the GPU worked on the next batch.

Backpressure is per render: a render has at most ``frames_ahead`` frames rendered
and not yet encoded (its ring's size), so memory stays bounded, and the planner's
fair shares follow the encoders' pace. On a CPU device everything runs the same
way without streams or pinned memory (the tests run it so).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import multiprocessing
import queue
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Hashable

import numpy as np
import torch

from contracts.errors import TransientError
from workers.animation.encoder_pool import EncodeHandle, EncoderPool, EncodeSpec
from workers.animation.wav2lip.face import CropBox, face_input
from workers.animation.wav2lip.mel import SegmentWindows, speech_range, warm
from workers.animation.wav2lip.network import PreparedNetwork
from workers.animation.wav2lip.planner import BatchPlanner, Part
from workers.animation.wav2lip.torch_paste import PasteTarget, upload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    batch_size: int = 128
    first_batch: int = 8
    frames_ahead: int = 32  # frames a render may have rendered but not yet encoded
    in_flight: int = 3  # batches whose download has not been drained yet
    max_wait: float = 0.01  # how long a part-full fair-share batch waits to fill (s); first batches never wait
    crf: int = 20
    preset: str = "veryfast"
    tune: str = ""  # x264's --tune (e.g. "zerolatency"); "" for none (see ``encoder.EncoderOptions``)
    poll: float = 0.004  # how often the feeder looks for room that encoders freed (s)
    # The interpreter's GIL switch interval while the engine runs (s; Python's default is 0.005). Render
    # threads release and retake the GIL at every numpy call; at 5 ms a turn, a segment's setup queued
    # behind the feeder's and drain's Python for hundreds of milliseconds.
    switch_interval: float = 0.001
    # Processes that compute the mel windows after a render's first batch (``mel.SegmentWindows``);
    # 0: the render thread computes them itself once its first batch is planned.
    mel_processes: int = 2
    # Processes that compute the first batch's windows (resampling included), ahead of any bulk work; 0: the render
    # thread computes them (inside its setup slot). On the H200 machine 4 took the 95th percentile of first frames
    # at 100 streams starting together from 326 to 117 ms (BENCHMARKS.md, issue 16, third pass).
    mel_first_processes: int = 4
    setup_cache: int = 64  # renders' uploaded faces and paste targets kept, per face box, portrait and mask
    # Renders that prepare at once (first windows, uploads, the encoder's opening; 0: no limit). Every render
    # thread's Python shares the GIL with the feeder: a hundred preparing together each took a hundredth of
    # it, all finished late, and the feeder waited for the GIL at each of its torch calls meanwhile.
    setup_slots: int = 2


@dataclass(frozen=True)
class RenderStats:
    frames: int
    seconds: float  # from ``render``'s call to the finished file
    first_frame_s: float  # from the call to the first frame pasted and handed to its encoder
    first_encoded_s: float  # from the call to the first frame encoded
    encode_seconds: float  # x264 and muxing time of this video in its encoder process
    # Where the first frame's time went: the render's setup (face upload, paste target, encoder opened)
    # and the launch of the batch that held its first frame, both from the call.
    setup_s: float = 0.0
    first_launched_s: float = 0.0


class _Render:
    def __init__(self, key: int, windows: np.ndarray | SegmentWindows, face: torch.Tensor, target: PasteTarget,
                 handle: EncodeHandle) -> None:
        self.key = key
        self.source = windows if isinstance(windows, SegmentWindows) else None
        self.windows = windows.array if isinstance(windows, SegmentWindows) else windows
        self.face = face
        self.target = target
        self.handle = handle
        self.total = len(windows)
        self.started = time.monotonic()
        self.first_launched = 0.0
        self.first_ready = 0.0
        self.failed = False

    @property
    def ready(self) -> int:
        """Frames whose mel windows are computed."""
        return self.total if self.source is None else self.source.ready


class RenderEngine:
    """Renders wav2lip videos of many concurrent renders through one network and an encoder pool."""

    def __init__(self, network: PreparedNetwork, face_size: int, encoders: EncoderPool,
                 options: EngineOptions = EngineOptions()) -> None:
        self.network = network
        self.face_size = face_size
        self.encoders = encoders
        self.options = options
        chunk = max(options.first_batch, options.frames_ahead // 2)
        self._planner = BatchPlanner(options.batch_size, options.first_batch, chunk)
        self._renders: dict[Hashable, _Render] = {}
        self._keys = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._cuda = network.device.type == "cuda"
        self._download = torch.cuda.Stream(network.device) if self._cuda else None
        self._drain_queue: queue.Queue[Any] = queue.Queue()
        self._slots = threading.Semaphore(max(1, options.in_flight))
        self._mel_buffers = [self._host((options.batch_size, 1, 80, 16), torch.float32)
                             for _ in range(max(1, options.in_flight) + 1)]
        self._mel_events: list[Any] = [None] * len(self._mel_buffers)
        self._setups: OrderedDict[Hashable, tuple[torch.Tensor, PasteTarget]] = OrderedDict()
        self._setup_lock = threading.Lock()
        self._mel_pool: Executor | None = None
        self._first_pool: Executor | None = None
        self._mel_lock = threading.Lock()
        self._gate: Any = (threading.BoundedSemaphore(options.setup_slots) if options.setup_slots > 0
                           else contextlib.nullcontext())
        self.batches = 0
        self.frames = 0
        if 0 < options.switch_interval < sys.getswitchinterval():
            sys.setswitchinterval(options.switch_interval)
        self._feeder = threading.Thread(target=self._feed, name="wav2lip-feeder", daemon=True)
        self._drainer = threading.Thread(target=self._drain, name="wav2lip-drain", daemon=True)
        self._feeder.start()
        self._drainer.start()
        pool = self._pool()  # started now, not at the first render (a process takes a second or more to start)
        if pool is not None:
            for _ in range(self.options.mel_processes):
                pool.submit(warm)
        if options.mel_first_processes > 0:
            self._first_pool = ProcessPoolExecutor(options.mel_first_processes,
                                                   mp_context=multiprocessing.get_context("spawn"))
            for _ in range(options.mel_first_processes):
                self._first_pool.submit(warm)

    def _host(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, pin_memory=self._cuda)

    # ---- the render threads' side ----

    def render(self, image: np.ndarray, box: CropBox, windows: np.ndarray | SegmentWindows, mask: np.ndarray,
               audio: np.ndarray, sample_rate: int, output: str, fps: int, stall_timeout: float = 120.0) -> RenderStats:
        """Write the MP4 of ``windows`` (frames, 1, 80, 16) pasted into ``image`` at ``box`` to ``output``.

        ``windows`` may be a ``SegmentWindows`` whose windows are not computed yet: the first batch's
        are computed before the render is planned, the rest while its first batch renders.
        Raises ``TransientError`` when no frame is encoded for ``stall_timeout`` seconds.
        """
        started = time.monotonic()
        source = windows if isinstance(windows, SegmentWindows) else None
        if source is not None and self._first_pool is not None:
            self._first_windows(source, self._first_pool)
        with self._gate:  # a few renders prepare at a time, each quickly, rather than all of them slowly
            if source is not None:
                source.compute(self._planner.first_batch)
            face, target = self._setup(image, box, mask)
        spec = EncodeSpec(output=output, image=image, box=(box.left, box.top, box.right, box.bottom), fps=fps,
                          audio=audio, sample_rate=sample_rate, crf=self.options.crf, preset=self.options.preset,
                          tune=self.options.tune)
        handle = self.encoders.open(spec, target.shape, len(windows), self.options.frames_ahead)
        key = next(self._keys)
        render = _Render(key, windows if source is not None else np.ascontiguousarray(windows, dtype=np.float32),
                         face, target, handle)
        render.started = started
        setup = time.monotonic() - started
        with self._cond:
            if self._closed:
                handle.abort()
                raise RuntimeError("the render engine is closed")
            self._renders[key] = render
            self._planner.add(key, render.total)
            self._cond.notify_all()
        try:
            if source is not None and source.ready < source.frames:
                self._complete(source)
            result = self._wait(render, stall_timeout)
        finally:
            with self._cond:
                self._planner.remove(key)
                self._renders.pop(key, None)
        return RenderStats(frames=result.frames, seconds=time.monotonic() - started,
                           first_frame_s=render.first_ready - started,
                           first_encoded_s=result.first_encoded_at - started, encode_seconds=result.encode_seconds,
                           setup_s=setup, first_launched_s=max(0.0, render.first_launched - started))

    def _setup(self, image: np.ndarray, box: CropBox, mask: np.ndarray) -> tuple[torch.Tensor, PasteTarget]:
        """The render's face input and paste target on the device, from the cache when it has them."""
        network = self.network
        region = np.ascontiguousarray(image[box.top:box.bottom, box.left:box.right])
        digest = hashlib.blake2b(region.data)  # hashlib lets go of the GIL over large buffers
        digest.update(np.ascontiguousarray(mask, dtype=np.float32).data)
        key = (box, region.shape, digest.digest())
        if self.options.setup_cache > 0:
            with self._setup_lock:
                hit = self._setups.get(key)
                if hit is not None:
                    self._setups.move_to_end(key)
                    return hit
        face = upload(face_input(image, box, self.face_size), network.device).to(network.dtype)
        target = PasteTarget(image, box, mask, self.face_size, network.device)
        if self.options.setup_cache > 0:
            with self._setup_lock:
                self._setups[key] = (face, target)
                while len(self._setups) > self.options.setup_cache:
                    self._setups.popitem(last=False)
        return face, target

    def _pool(self) -> Executor | None:
        if self.options.mel_processes <= 0:
            return None
        with self._mel_lock:
            if self._mel_pool is None and not self._closed:
                self._mel_pool = ProcessPoolExecutor(self.options.mel_processes,
                                                     mp_context=multiprocessing.get_context("spawn"))
            return self._mel_pool

    def _first_windows(self, source: SegmentWindows, pool: Executor) -> None:
        """The first batch's windows from a first-windows process (here, if it fails)."""
        try:
            first = pool.submit(speech_range, source.samples, source.sample_rate, source.frames, source.fps, 0,
                                min(source.frames, self._planner.first_batch), source.params).result(timeout=60)
            source.put(0, first)
        except Exception as e:  # computed in the setup slot instead
            log.warning("first mel windows in a process failed (%s: %s)", type(e).__name__, e)

    def _complete(self, source: SegmentWindows) -> None:
        """The rest of a render's mel windows, in the mel processes (or here if they fail or there are none)."""
        pool = self._pool()
        start = source.ready
        if pool is not None:
            try:
                rest = pool.submit(speech_range, source.samples, source.sample_rate, source.frames, source.fps,
                                   start, source.frames, source.params).result(timeout=60)
                source.put(start, rest)
            except Exception as e:  # a broken or closed pool: the windows are still needed
                log.warning("mel windows in the mel processes failed (%s: %s); computing them here",
                            type(e).__name__, e)
        source.compute(source.frames)
        with self._cond:
            self._cond.notify_all()

    def _wait(self, render: _Render, stall_timeout: float) -> Any:
        handle = render.handle
        last, since = -1, time.monotonic()
        while True:
            try:
                return handle.result.result(timeout=0.5)
            except FutureTimeout:
                encoded = handle.encoded
                if encoded != last:
                    last, since = encoded, time.monotonic()
                elif time.monotonic() - since > stall_timeout:
                    error = TransientError(f"the render stalled: no frame encoded for {stall_timeout:.0f} s")
                    self._fail(render, error)
                    raise error from None
            except BaseException as e:
                self._fail(render, e)
                raise

    def _fail(self, render: _Render, error: BaseException) -> None:
        render.failed = True
        render.handle.abort(error)

    def close(self) -> None:
        """Stop the threads; renders still running fail."""
        with self._cond:
            self._closed = True
            renders = list(self._renders.values())
            self._cond.notify_all()
        for render in renders:
            self._fail(render, TransientError("the render engine is closing"))
        self._feeder.join(10)
        self._drain_queue.put(None)
        self._drainer.join(10)
        with self._mel_lock:
            pools, self._mel_pool, self._first_pool = (self._mel_pool, self._first_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    # ---- the feeder thread ----

    def _room(self, key: Hashable) -> int:
        render = self._renders[key]
        if render.failed:
            return 0
        scheduled = self._planner.scheduled(key)
        return min(render.handle.encoded + self.options.frames_ahead, render.ready) - scheduled

    def _next_parts(self) -> list[tuple[_Render, Part]] | None:
        planner = self._planner
        deadline: float | None = None
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                # Each render's room once per look (the planner asks several times per render): a read of
                # its ring's header under a lock, for every render, every few milliseconds.
                rooms = {key: self._room(key) for key in self._renders}
                room = rooms.__getitem__
                ready = 0 if planner.has_first_frames(room) else planner.ready_frames(room)
                if ready and deadline is None:
                    deadline = now + self.options.max_wait
                if not ready or ready >= planner.batch_size or (deadline is not None and now >= deadline):
                    parts = planner.plan(room)
                    if parts:
                        return [(self._renders[p.key], p) for p in parts]
                # Room frees as encoders progress, which nobody signals: look again shortly.
                self._cond.wait(self.options.poll if planner.pending() else None)
            return None

    def _feed(self) -> None:
        torch.set_grad_enabled(False)
        slot = 0
        while True:
            # The slot first, then the plan: a render that arrives while every slot is in flight still
            # makes the next batch's first frames, rather than waiting behind a batch planned before it.
            self._slots.acquire()
            parts = self._next_parts()
            if parts is None:
                self._slots.release()
                return
            try:
                with torch.inference_mode():
                    item = self._run(parts, slot)
            except Exception as e:  # a failed batch fails its renders, never the engine
                log.exception("a wav2lip batch of %d renders failed", len(parts))
                error = TransientError(f"the lip-sync batch failed: {type(e).__name__}: {e}")
                for render, _ in parts:
                    self._fail(render, error)
                self._slots.release()
                continue
            slot = (slot + 1) % len(self._mel_buffers)
            self._drain_queue.put(item)

    def _run(self, parts: list[tuple[_Render, Part]], slot: int) -> tuple[Any, list[Any]]:
        network = self.network
        frames = sum(p.frames for _, p in parts)
        # Parts of renders that share an upload (one portrait, one box: ``_setup``'s cache) side by side, so that
        # each group's faces are one copy and its paste-back one call: a first batch of sixteen new renders of
        # one portrait is a few dozen torch calls, not hundreds, each of which waits its turn for the GIL.
        order: dict[int, int] = {}
        for render, _ in parts:
            order.setdefault(id(render.target), len(order))
        parts = sorted(parts, key=lambda rp: order[id(rp[0].target)])
        groups: list[tuple[_Render, int, int]] = []  # (a render of the group, first frame in the batch, frames)
        offset = 0
        for render, part in parts:
            if groups and groups[-1][0].target is render.target and groups[-1][0].face is render.face:
                shared, first, count = groups[-1]
                groups[-1] = (shared, first, count + part.frames)
            else:
                groups.append((render, offset, part.frames))
            offset += part.frames
        size = self._planner.bucket(frames) if network.compiled else frames
        # Mel windows: into a pinned buffer (after its previous upload finished), then up asynchronously.
        if self._mel_events[slot] is not None:
            self._mel_events[slot].synchronize()
        mel_host = self._mel_buffers[slot][:size]
        mel_np = mel_host.numpy()
        offset = 0
        for render, part in parts:
            mel_np[offset:offset + part.frames] = render.windows[part.start:part.end]
            offset += part.frames
        if size > frames:  # padding rows for a compiled shape: real data, outputs dropped
            mel_np[frames:size] = mel_np[0]
        mel = mel_host.to(network.device, non_blocking=True).to(network.dtype)
        if self._cuda:
            event = torch.cuda.Event(blocking=True)
            event.record()
            self._mel_events[slot] = event
        # Faces: each render's one uploaded face, repeated on the device.
        layout = torch.channels_last if network.channels_last else torch.contiguous_format
        face = torch.empty((size, 6, self.face_size, self.face_size), dtype=network.dtype, device=network.device,
                           memory_format=layout)
        for render, first, count in groups:
            face[first:first + count] = render.face
        if size > frames:
            face[frames:size] = parts[0][0].face
        if network.channels_last:
            mel = mel.contiguous(memory_format=torch.channels_last)
        out = network.forward(mel, face)
        regions = [render.target.paste(out[first:first + count]) for render, first, count in groups]
        launched = time.monotonic()
        for render, part in parts:
            if part.start == 0:
                render.first_launched = launched
        self.batches += 1
        self.frames += frames
        if not self._cuda:
            batch = torch.cat(regions) if len(regions) > 1 else regions[0]
            out_parts = []
            offset = 0
            for render, part in parts:
                out_parts.append((render, part, batch[offset:offset + part.frames]))
                offset += part.frames
            return None, out_parts
        assert self._download is not None
        # Every region of the batch side by side in one buffer: one download, one pinned buffer per batch.
        flat = torch.cat([region.reshape(-1) for region in regions]) if len(regions) > 1 else regions[0].reshape(-1)
        done = torch.cuda.Event(blocking=True)
        self._download.wait_stream(torch.cuda.current_stream(network.device))
        host = torch.empty(flat.shape, dtype=torch.uint8, pin_memory=True)
        with torch.cuda.stream(self._download):
            host.copy_(flat, non_blocking=True)
            flat.record_stream(self._download)
            done.record()
        hosts = []
        offset = 0
        for render, part in parts:  # the regions are in the parts' order, each part's frames together
            shape = (part.frames, *render.target.shape)
            size = part.frames * int(np.prod(render.target.shape))
            hosts.append((render, part, host[offset:offset + size].view(shape)))
            offset += size
        return done, hosts

    # ---- the drain thread ----

    def _drain(self) -> None:
        while True:
            item = self._drain_queue.get()
            if item is None:
                return
            done, hosts = item
            try:
                if done is not None:
                    done.synchronize()
                for render, part, host in hosts:
                    if render.failed:
                        continue
                    try:
                        render.handle.write(part.start, host.numpy())
                    except Exception as e:  # this render's encoder is gone; the others go on
                        self._fail(render, TransientError(f"handing frames to the encoder failed: {e}"))
                        continue
                    if part.start == 0:
                        render.first_ready = time.monotonic()
            finally:
                self._slots.release()
                with self._cond:
                    self._cond.notify_all()
