"""The coordinator's start-up heap is frozen: full collections skip it, request garbage is still collected."""

from __future__ import annotations

import gc
import weakref

import pytest

from coordinator.heap import freeze_startup_heap

pytestmark = pytest.mark.unit


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.partner, b.partner = b, a
    return weakref.ref(a)


def test_freezing_sets_the_live_heap_aside_and_later_garbage_is_still_collected() -> None:
    kept = [Node() for _ in range(1000)]
    try:
        frozen = freeze_startup_heap()
        assert frozen >= len(kept)
        assert gc.get_freeze_count() == frozen
        assert not any(obj is kept for obj in gc.get_objects(generation=2))  # set aside, not walked
        made_later = cycle()  # a reference cycle made after the freeze, like a request's garbage
        gc.collect()
        assert made_later() is None
    finally:
        gc.unfreeze()
