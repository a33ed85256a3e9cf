"""A streamed job's HLS playlist and its segments (``/v1/jobs/{id}/stream.m3u8``, ``…/segments/{n}.ts|mp4``).

``?_HLS_msn=N`` asks for a blocking reload: the answer waits until segment ``N`` is
listed, the job ends, or three target durations pass (what the HLS specification
allows a server), and is then the playlist as it stands.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from coordinator.auth import Caller, caller
from coordinator.context import job_or_404, state_of
from coordinator.errors import ApiError
from coordinator.streams import is_streamed, job_playlist, wait_for_segment

router = APIRouter(dependencies=[Depends(caller)])
_MEDIA = {"ts": "video/mp2t", "mp4": "video/mp4"}


@router.get("/v1/jobs/{job_id}/stream.m3u8", summary="HLS playlist of a streamed job's segments",
            response_class=Response)
async def get_playlist(
    request: Request, job_id: str,
    msn: Annotated[int | None, Query(alias="_HLS_msn", ge=0, description="hold the answer until this segment is "
                                                                         "listed (blocking playlist reload)")] = None,
    who: Caller = Depends(caller),
) -> Response:
    state = state_of(request)
    job, _ = await job_or_404(state, job_id, who)
    if not await asyncio.to_thread(is_streamed, state.store, job_id):
        raise ApiError(404, "not_streamed", f"job {job_id} was not streamed; its video is at /video")
    target = state.settings.hls_target_seconds
    if msn is None:
        events = await asyncio.to_thread(state.store.events_of_kind, job_id, "segment")
    else:
        job, events = await wait_for_segment(state.store, state.watchers, job, msn, 3 * target)
    text = job_playlist(job, events, target)
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
