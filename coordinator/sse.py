"""Server-sent events of one job, replayed from the store and woken by the event consumer."""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

from coordinator.events import JobWatchers
from coordinator.store.repo import TERMINAL, JobStore
from coordinator.urls import Urls

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0


async def job_event_stream(store: JobStore, watchers: JobWatchers, job_id: str, urls: Urls,
                           last_id: int = 0) -> AsyncIterator[str]:
    """Yield SSE frames for events after ``last_id`` until the job ends (a ``done`` frame last).

    A ``segment`` event carries the URLs of its MPEG-TS and MP4 files.
    """
    wake = watchers.watch(job_id)
    idle = 0.0
    try:
        while True:
            wake.clear()
            rows = await asyncio.to_thread(store.events_after, job_id, last_id)
            for row in rows:
                last_id = row.id
                data = {"stage": row.stage, "kind": row.kind, "at": row.at.isoformat(), **(row.data or {})}
                if row.kind == "segment":
                    index = data.pop("segment")
                    data = {k: v for k, v in data.items() if not k.endswith("_key")}
                    data.update(segment=index, url=urls.segment(job_id, index),
                                mp4_url=urls.segment(job_id, index, "mp4"))
                yield f"id: {row.id}\nevent: {row.kind}\ndata: {json.dumps(data)}\n\n"
            found = await asyncio.to_thread(store.get_job, job_id)
            if found is None or found[0].status in TERMINAL:
                status = found[0].status if found else "unknown"
                yield f"event: done\ndata: {json.dumps({'status': status})}\n\n"
                return
            try:
                await asyncio.wait_for(wake.wait(), timeout=POLL_SECONDS)
                idle = 0.0
            except asyncio.TimeoutError:
                idle += POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield ": keep-alive\n\n"
    finally:
        watchers.unwatch(job_id, wake)
