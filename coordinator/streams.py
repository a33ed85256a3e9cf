"""A streamed job as the store records it: whether it was streamed, and the playlist of its landed segments.

A streamed job (``stream`` on the request, or the ``stream_replies`` setting)
reports each rendered sentence as a ``segment`` event; the playlist and the
segment files are read from those events.
"""

from __future__ import annotations

from coordinator.hls import PlaylistEntry, playlist
from coordinator.store.models import EventRow, JobRow
from coordinator.store.repo import TERMINAL, JobStore
from coordinator.urls import segment_path


def is_streamed(store: JobStore, job_id: str) -> bool:
    queued = store.events_of_kind(job_id, "queued")
    return bool(queued and queued[0].data.get("stream"))


def job_playlist(job: JobRow, segments: list[EventRow], target_seconds: float) -> str:
    """The HLS playlist of the job's landed segments (closed once the job has ended)."""
    entries = [PlaylistEntry(index=e.data["segment"], seconds=float(e.data["seconds"]),
                             uri=segment_path(e.data["segment"])) for e in segments]
    return playlist(entries, complete=job.status in TERMINAL, target_seconds=target_seconds)
