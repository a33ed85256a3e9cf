"""Server-sent events of one job: replayed from the store, then pushed as the job changes.

A stream reads the job's events after ``Last-Event-ID`` once, then sleeps until the
job changes (``coordinator.notify`` wakes it, on whichever coordinator the event
was stored) and reads only what is new. It ends with a ``done`` frame after the
job's terminal event. Should a wake be lost, it looks again every
``FALLBACK_SECONDS``; a comment line every ``KEEPALIVE_SECONDS`` keeps proxies from
closing it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator, Callable

from contracts.events import TEXTS
from coordinator.events import JobWatchers
from coordinator.store.repo import TERMINAL, JobStore
from coordinator.urls import Urls

KEEPALIVE_SECONDS = 15.0
FALLBACK_SECONDS = 10.0
TERMINAL_KINDS = frozenset({"completed", "failed", "cancelled"})


async def job_event_stream(store: JobStore, watchers: JobWatchers, job_id: str, urls: Urls,
                           last_id: int = 0, alive: Callable[[], None] = lambda: None) -> AsyncIterator[str]:
    """Yield SSE frames for events after ``last_id`` until the job ends (a ``done`` frame last).

    A ``segment`` event carries the URLs of its MPEG-TS and MP4 files. ``alive`` is called at
    every keep-alive (the per-key stream count is refreshed there).
    """
    wake = watchers.watch(job_id)
    quiet_since = checked_at = time.monotonic()
    try:
        while True:
            wake.clear()
            rows = await asyncio.to_thread(store.events_after, job_id, last_id)
            ended = False
            for row in rows:
                last_id = row.id
                ended = ended or row.kind in TERMINAL_KINDS
                yield _frame(row.id, row.kind, _data(row.stage, row.kind, row.at.isoformat(), row.data, job_id, urls))
                quiet_since = time.monotonic()
            if ended or time.monotonic() - checked_at >= FALLBACK_SECONDS:
                found = await asyncio.to_thread(store.get_job, job_id)
                checked_at = time.monotonic()
                if found is None or found[0].status in TERMINAL:
                    status = found[0].status if found is not None else "unknown"
                    yield f"event: done\ndata: {json.dumps({'status': status})}\n\n"
                    return
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(KEEPALIVE_SECONDS, FALLBACK_SECONDS))
            except asyncio.TimeoutError:
                if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    alive()
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
    finally:
        watchers.unwatch(job_id, wake)


def _data(stage: str, kind: str, at: str, stored: dict[str, Any] | None, job_id: str, urls: Urls) -> dict[str, Any]:
    # The texts are in their fields (the consumer read them); which artifacts held them is the farm's business.
    data = {"stage": stage, "kind": kind, "at": at, **{k: v for k, v in (stored or {}).items() if k != TEXTS}}
    if kind == "segment":
        index = data.pop("segment")
        data = {k: v for k, v in data.items() if not k.endswith("_key")}
        data.update(segment=index, url=urls.segment(job_id, index), mp4_url=urls.segment(job_id, index, "mp4"))
    return data


def _frame(event_id: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
