"""A streamed job's HLS playlist and its segments (``/v1/jobs/{id}/stream.m3u8``, ``…/segments/{n}.ts|mp4``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from coordinator.auth import Caller, caller
from coordinator.context import job_or_404, state_of
from coordinator.errors import ApiError
from coordinator.streams import is_streamed, job_playlist

router = APIRouter(dependencies=[Depends(caller)])
_MEDIA = {"ts": "video/mp2t", "mp4": "video/mp4"}


@router.get("/v1/jobs/{job_id}/stream.m3u8", summary="HLS playlist of a streamed job's segments",
            response_class=Response)
async def get_playlist(request: Request, job_id: str, who: Caller = Depends(caller)) -> Response:
    state = state_of(request)
    job, _ = await job_or_404(state, job_id, who)
    if not await asyncio.to_thread(is_streamed, state.store, job_id):
        raise ApiError(404, "not_streamed", f"job {job_id} was not streamed; its video is at /video")
    events = await asyncio.to_thread(state.store.events_of_kind, job_id, "segment")
    text = job_playlist(job, events, state.settings.hls_target_seconds)
    return Response(text, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-cache"})


@router.get("/v1/jobs/{job_id}/segments/{index}.{ext}", summary="One segment (MPEG-TS or MP4)",
            response_class=FileResponse)
async def get_segment(request: Request, job_id: str, index: int, ext: str,
                      who: Caller = Depends(caller)) -> FileResponse:
    state = state_of(request)
    await job_or_404(state, job_id, who)
    if ext not in _MEDIA:
        raise ApiError(404, "segment_not_found", "segments are served as .ts or .mp4")
    events = await asyncio.to_thread(state.store.events_of_kind, job_id, "segment")
    event = next((e for e in events if e.data.get("segment") == index), None)
    if event is None:
        raise ApiError(404, "segment_not_found", f"job {job_id} has no segment {index} (yet)")
    key = event.data["ts_key" if ext == "ts" else "video_key"]
    path = state.artifacts.path(key)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, "segment_gone", "the segment was removed from the artifact store")
    return FileResponse(path, media_type=_MEDIA[ext], headers={"Cache-Control": "public, max-age=86400"})
