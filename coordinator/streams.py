"""A streamed job as the store records it: whether it was streamed, and the playlist of its landed segments.

A streamed job (``stream`` on the request, or the ``stream_replies`` setting)
reports each rendered sentence as a ``segment`` event; the playlist and the
segment files are read from those events.

A blocking playlist reload (``?_HLS_msn=N``) waits in ``wait_for_segment`` until
segment ``N`` is listed, the job ends or ``block_seconds`` pass. It sleeps on the
job's watcher, which the event consumer and the change channel of
``coordinator.notify`` wake when the job has a new event, exactly as an SSE
stream does; it looks again every ``FALLBACK_SECONDS`` should a wake be lost.
"""

from __future__ import annotations

import asyncio
import time

from coordinator.events import JobWatchers
from coordinator.hls import PlaylistEntry, playable, playlist
from coordinator.sse import FALLBACK_SECONDS
from coordinator.store.models import EventRow, JobRow
from coordinator.store.repo import TERMINAL, JobStore
from coordinator.urls import segment_path


def is_streamed(store: JobStore, job_id: str) -> bool:
    queued = store.events_of_kind(job_id, "queued")
    return bool(queued and queued[0].data.get("stream"))


def playlist_entries(segments: list[EventRow]) -> list[PlaylistEntry]:
    return [PlaylistEntry(index=e.data["segment"], seconds=float(e.data["seconds"]),
                          uri=segment_path(e.data["segment"])) for e in segments]


def job_playlist(job: JobRow, segments: list[EventRow], target_seconds: float) -> str:
    """The HLS playlist of the job's landed segments (closed once the job has ended)."""
    return playlist(playlist_entries(segments), complete=job.status in TERMINAL, target_seconds=target_seconds)


async def wait_for_segment(store: JobStore, watchers: JobWatchers, job: JobRow, msn: int,
                           block_seconds: float) -> tuple[JobRow, list[EventRow]]:
    """The job and its segment events once segment ``msn`` is listed, the job has ended or the time is up."""
    wake = watchers.watch(job.id)
    deadline = time.monotonic() + block_seconds
    try:
        while True:
            wake.clear()  # before the read: a segment stored during the read wakes the next wait
            segments = await asyncio.to_thread(store.events_of_kind, job.id, "segment")
            found = await asyncio.to_thread(store.get_job, job.id)
            job = found[0] if found is not None else job
            left = deadline - time.monotonic()
            if len(playable(playlist_entries(segments))) > msn or job.status in TERMINAL or left <= 0:
                return job, segments
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(left, FALLBACK_SECONDS))
            except asyncio.TimeoutError:
                pass
    finally:
        watchers.unwatch(job.id, wake)
