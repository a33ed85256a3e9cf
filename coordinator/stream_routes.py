"""The streamed side of a job: its segments as they land, the HLS playlist, and cancel.

A streamed job (``stream`` on the request, or the ``stream_replies`` setting)
reports each rendered sentence as a ``segment`` event; these routes read those
events from the store. ``DELETE /v1/jobs/{id}`` cancels any job that has not
ended, streamed or not.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import Histogram

from coordinator.context import job_or_404, runtime_of
from coordinator.errors import ApiError
from coordinator.hls import PlaylistEntry, playlist
from coordinator.runtime import Runtime
from coordinator.store.models import EventRow, JobRow
from coordinator.store.repo import TERMINAL

router = APIRouter()

TIME_TO_FIRST_SEGMENT = Histogram(
    "talkfarm_time_to_first_segment_seconds",
    "From submission to the first rendered segment of a streamed job",
    buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 60),
)
_MEDIA = {"ts": "video/mp2t", "mp4": "video/mp4"}


def _aware(at: datetime, like: datetime) -> datetime:
    return at.replace(tzinfo=like.tzinfo) if at.tzinfo is None else at


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((_aware(end, start) - _aware(start, end)).total_seconds(), 3)


def segment_url(base: str, job_id: str, index: int, ext: str = "ts") -> str:
    return f"{base}/v1/jobs/{job_id}/segments/{index}.{ext}"


def streaming_view(job: JobRow, segments: list[EventRow], streamed: bool, base: str) -> dict[str, Any]:
    """What ``GET /v1/jobs/{id}`` adds for a streamed job: segments, playlist URL, time to first segment."""
    if not streamed:
        return {"stream": False}
    first = next((e for e in segments if e.data.get("segment") == 0), None)
    return {
        "stream": True,
        "stream_url": f"{base}/v1/jobs/{job.id}/stream.m3u8",
        "time_to_first_segment_seconds": seconds_between(job.created_at, first.at if first else None),
        "segments": [
            {"index": e.data["segment"], "seconds": e.data.get("seconds"), "text": e.data.get("text"),
             "url": segment_url(base, job.id, e.data["segment"]),
             "mp4_url": segment_url(base, job.id, e.data["segment"], "mp4")}
            for e in sorted(segments, key=lambda e: e.data["segment"])
        ],
    }


def is_streamed(rt: Runtime, job_id: str) -> bool:
    queued = rt.store.events_of_kind(job_id, "queued")
    return bool(queued and queued[0].data.get("stream"))


def observe_first_segment(job: JobRow, at: datetime) -> None:
    seconds = seconds_between(job.created_at, at)
    if seconds is not None:
        TIME_TO_FIRST_SEGMENT.observe(max(0.0, seconds))


@router.delete("/v1/jobs/{job_id}", status_code=202, summary="Cancel a job",
               description="Stops the job's remaining subtasks: none starts after this answers. "
                           "A subtask already running finishes, but its result is not used.")
async def cancel_job(request: Request, job_id: str) -> JSONResponse:
    rt = runtime_of(request)
    status = await asyncio.to_thread(rt.jobs.cancel, job_id)
    return JSONResponse(status_code=202, content={"job_id": job_id, "status": status})


@router.get("/v1/jobs/{job_id}/stream.m3u8", summary="HLS playlist of a streamed job's segments",
            response_class=Response)
async def job_playlist(request: Request, job_id: str) -> Response:
    rt = runtime_of(request)
    job, _ = await job_or_404(rt, job_id)
    if not await asyncio.to_thread(is_streamed, rt, job_id):
        raise ApiError(404, "not_streamed", f"job {job_id} was not streamed; its video is at /video")
    events = await asyncio.to_thread(rt.store.events_of_kind, job_id, "segment")
    entries = [PlaylistEntry(index=e.data["segment"], seconds=float(e.data["seconds"]),
                             uri=f"segments/{e.data['segment']}.ts") for e in events]
    text = playlist(entries, complete=job.status in TERMINAL, target_seconds=rt.settings.hls_target_seconds)
    return Response(text, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-cache"})


@router.get("/v1/jobs/{job_id}/segments/{index}.{ext}", summary="One segment (MPEG-TS or MP4)",
            response_class=FileResponse)
async def job_segment(request: Request, job_id: str, index: int, ext: str) -> FileResponse:
    rt = runtime_of(request)
    await job_or_404(rt, job_id)
    if ext not in _MEDIA:
        raise ApiError(404, "segment_not_found", "segments are served as .ts or .mp4")
    events = await asyncio.to_thread(rt.store.events_of_kind, job_id, "segment")
    event = next((e for e in events if e.data.get("segment") == index), None)
    if event is None:
        raise ApiError(404, "segment_not_found", f"job {job_id} has no segment {index} (yet)")
    key = event.data["ts_key" if ext == "ts" else "video_key"]
    path = rt.artifacts.path(key)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, "segment_gone", "the segment was removed from the artifact store")
    return FileResponse(path, media_type=_MEDIA[ext], headers={"Cache-Control": "public, max-age=86400"})
