"""Which frames of which renders go into the next forward pass: first frames first, then fair shares.

The rule that keeps a segment's first frame fast whatever the throughput batch:

1. **First batch.** A render none of whose frames has been scheduled yet is *new*.
   While any new render can take frames, the next batch holds only new renders'
   first ``first_batch`` frames (oldest render first, up to ``batch_size`` in all):
   a new segment never queues behind the frames of renders already running, and its
   first frame comes out of a small batch.
2. **Fair shares.** Otherwise the batch is filled round robin, from the render after
   the one served last, each render taking ``chunk`` frames a turn (fewer only for
   its last frames), until ``batch_size`` frames or no render can take more. So many
   concurrent renders advance together, each at the pace its encoder allows, and
   in pieces large enough that a batch holds a few parts rather than many slivers.

What a render can take is capped from outside (``room``): the frames its encoder
has freed room for (rendered but not yet encoded frames live in shared memory, see
``encoder_pool``). A compiled network runs fixed shapes, so a batch's size is
rounded up to a *bucket*: ``first_batch`` or ``batch_size``.

The planner is plain bookkeeping with no threads; ``engine`` calls it under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable


@dataclass(frozen=True)
class Part:
    """Frames ``start:end`` of render ``key`` in a batch."""

    key: Hashable
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass
class _Render:
    key: Hashable
    total: int
    scheduled: int = 0


class BatchPlanner:
    """Plans batches of at most ``batch_size`` frames over the renders added to it."""

    def __init__(self, batch_size: int, first_batch: int, chunk: int | None = None) -> None:
        if batch_size < 1 or first_batch < 1:
            raise ValueError(f"batch_size and first_batch must be at least 1, got {batch_size} and {first_batch}")
        self.batch_size = batch_size
        self.first_batch = min(first_batch, batch_size)
        self.chunk = max(1, chunk or self.first_batch)
        self._renders: dict[Hashable, _Render] = {}  # in arrival order
        self._last: Hashable | None = None  # the render served last in a fair-share batch

    def __len__(self) -> int:
        return len(self._renders)

    @property
    def buckets(self) -> tuple[int, ...]:
        """The batch sizes a compiled network is run at."""
        return tuple(sorted({self.first_batch, self.batch_size}))

    def bucket(self, frames: int) -> int:
        """The smallest bucket that holds ``frames``."""
        return next(size for size in self.buckets if size >= frames)

    def add(self, key: Hashable, total: int) -> None:
        if key in self._renders:
            raise ValueError(f"render {key!r} is already planned")
        if total < 1:
            raise ValueError("a render needs at least one frame")
        self._renders[key] = _Render(key, total)

    def remove(self, key: Hashable) -> None:
        self._renders.pop(key, None)

    def scheduled(self, key: Hashable) -> int:
        return self._renders[key].scheduled

    def pending(self) -> bool:
        """Whether any render still has frames to schedule (room or not)."""
        return any(r.scheduled < r.total for r in self._renders.values())

    def has_first_frames(self, room: Callable[[Hashable], int]) -> bool:
        """Whether the next batch would be a first batch."""
        return any(not r.scheduled and room(r.key) > 0 for r in self._renders.values())

    def ready_frames(self, room: Callable[[Hashable], int]) -> int:
        """How many frames a fair-share batch would hold now (at most ``batch_size``)."""
        total = 0
        for render in self._renders.values():
            total += self._free(render, room)
            if total >= self.batch_size:
                return self.batch_size
        return total

    def _free(self, render: _Render, room: Callable[[Hashable], int]) -> int:
        """Frames ``render`` can take now, in whole chunks (or all its last frames)."""
        free = min(render.total - render.scheduled, room(render.key))
        left = render.total - render.scheduled
        if free >= left:
            return left
        return free - free % self.chunk

    def plan(self, room: Callable[[Hashable], int]) -> list[Part]:
        """The next batch, as parts in order; empty when no render can take a frame now.

        ``room(key)`` is how many more frames render ``key`` may have scheduled now.
        The parts are counted as scheduled.
        """
        parts = self._first_frames(room)
        if not parts:
            parts = self._fair_shares(room)
        for part in parts:
            self._renders[part.key].scheduled = part.end
        return parts

    def _first_frames(self, room: Callable[[Hashable], int]) -> list[Part]:
        parts: list[Part] = []
        left = self.batch_size
        for render in self._renders.values():
            if left == 0:
                break
            if render.scheduled:
                continue
            count = min(self.first_batch, render.total, room(render.key), left)
            if count > 0:
                parts.append(Part(render.key, 0, count))
                left -= count
        return parts

    def _fair_shares(self, room: Callable[[Hashable], int]) -> list[Part]:
        order = list(self._renders)
        if not order:
            return []
        start = order.index(self._last) + 1 if self._last in self._renders else 0
        order = order[start:] + order[:start]
        free = {key: self._free(self._renders[key], room) for key in order}
        taken: dict[Hashable, int] = {}  # frames given to each render in this batch
        left = self.batch_size
        progress = True
        while left and progress:
            progress = False
            for key in order:
                have = taken.get(key, 0)
                count = min(self.chunk, free[key] - have, left)
                if count <= 0:
                    continue
                taken[key] = have + count
                left -= count
                progress = True
                self._last = key
                if left == 0:
                    break
        parts = []
        for key in order:  # one part per render, its frames contiguous
            if key in taken:
                begin = self._renders[key].scheduled
                parts.append(Part(key, begin, begin + taken[key]))
        return parts
