"""``/v1/jobs``: submit a job, read it, follow its events, fetch its video, cancel it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from coordinator import admission
from coordinator.context import job_or_404, state_of, urls_of
from coordinator.errors import ApiError
from coordinator.jobs import JobRequest
from coordinator.sse import job_event_stream
from coordinator.streams import is_streamed
from coordinator.views import job_view, streaming_view

router = APIRouter()


def _suffix(upload: UploadFile) -> str:
    ext = Path(upload.filename or "").suffix.lower().lstrip(".")
    return ext if ext.isalnum() and 0 < len(ext) <= 8 else "bin"


@router.post("/v1/jobs", status_code=202, summary="Submit a job",
             description="Answers at once with the job's ID and URLs; the work happens in the stage workers.")
async def submit_job(
    request: Request,
    portrait: Annotated[UploadFile | None, File(description="portrait photo (JPEG, PNG, WebP, ...)")] = None,
    audio: Annotated[UploadFile | None, File(description="spoken question (chat) or speech (lipsync)")] = None,
    text: Annotated[str | None, Form(description="typed question (chat) or text to say (speak)")] = None,
    mode: Annotated[str, Form(description="chat | speak | lipsync")] = "chat",
    session_id: Annotated[str | None, Form()] = None,
    language: Annotated[str | None, Form(max_length=16)] = None,
    voice: Annotated[str | None, Form(max_length=128)] = None,
    avatar: Annotated[str | None, Form(
        description="a saved avatar's ID (POST /v1/avatars) instead of `portrait`",
    )] = None,
    face: Annotated[str | None, Form(
        description="which face to animate when the photo has several: 0 the largest (default), 1 the next, ...",
    )] = None,
    stream: Annotated[bool | None, Form(
        description="render the reply sentence by sentence (segments, HLS); default: the `stream_replies` setting",
    )] = None,
) -> JSONResponse:
    state = state_of(request)
    limits = state.settings.limits
    checked_mode = admission.check_mode(mode)
    if session_id is not None:
        session_id = admission.check_uuid(session_id, "session_id")
    if avatar is not None:
        avatar = admission.check_uuid(avatar, "avatar")
    if portrait is not None and avatar is not None:
        raise ApiError(422, "bad_input", "send a `portrait` image or an `avatar` ID, not both")
    if portrait is None and avatar is None and session_id is None:
        raise ApiError(422, "portrait_required", "a `portrait` image file or an `avatar` ID is required")
    clean_text = admission.check_text(text, limits)
    admission.check_inputs(checked_mode, audio is not None, clean_text)
    face_index = admission.check_face(face)
    tts = await asyncio.to_thread(state.catalog.offer, "tts")
    if voice:
        admission.check_voice(voice, language, tts)
    await asyncio.to_thread(admission.check_speech, checked_mode, clean_text, language or None, tts)

    portrait_bytes, portrait_ext = None, "bin"
    if portrait is not None:  # else the avatar's, or the session's avatar
        portrait_bytes = await portrait.read()
        portrait_ext = await asyncio.to_thread(admission.check_image, portrait_bytes, limits)
    audio_bytes = None
    if audio is not None:
        audio_bytes = (await asyncio.to_thread(admission.check_audio, await audio.read(), limits)).data

    job_request = JobRequest(mode=checked_mode, portrait=portrait_bytes, portrait_ext=portrait_ext,
                             session_id=session_id, audio=audio_bytes,
                             audio_ext=_suffix(audio) if audio is not None else "bin",
                             text=clean_text, language=language or None, voice=voice or None, stream=stream,
                             face_index=face_index, avatar_id=avatar)
    submitted = await asyncio.to_thread(state.jobs.submit, job_request)
    return JSONResponse(status_code=202, content={
        "job_id": submitted.job_id,
        "session_id": submitted.session_id,
        "status": submitted.status,
        "cached": submitted.cached,
        "urls": urls_of(request).job_links(submitted.job_id, submitted.session_id),
    })


@router.get("/v1/jobs/{job_id}", summary="Job status, stage timings, transcript and reply")
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    state = state_of(request)
    job, stages = await job_or_404(state, job_id)
    streamed = await asyncio.to_thread(is_streamed, state.store, job_id)
    segments = await asyncio.to_thread(state.store.events_of_kind, job_id, "segment") if streamed else []
    urls = urls_of(request)
    return {**job_view(job, stages, urls), **streaming_view(job, segments, streamed, urls)}


@router.get("/v1/jobs/{job_id}/events", summary="Server-sent events as the stages progress")
async def job_events(request: Request, job_id: str,
                     last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    state = state_of(request)
    await job_or_404(state, job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return StreamingResponse(job_event_stream(state.store, state.watchers, job_id, urls_of(request), after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/v1/jobs/{job_id}/video", summary="The MP4 (H.264 + AAC, faststart, range requests)",
            response_class=FileResponse)
async def job_video(request: Request, job_id: str) -> FileResponse:
    state = state_of(request)
    job, _ = await job_or_404(state, job_id)
    if job.status != "succeeded" or not job.video_key:
        code = "job_failed" if job.status == "failed" else "video_not_ready"
        raise ApiError(409, code, f"job {job_id} is {job.status}; it has no video")
    path = state.artifacts.path(job.video_key)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, "video_gone", "the video was removed from the artifact store")
    return FileResponse(path, media_type="video/mp4", filename=f"{job_id}.mp4",
                        content_disposition_type="inline")


@router.delete("/v1/jobs/{job_id}", status_code=202, summary="Cancel a job",
               description="Stops the job's remaining subtasks: none starts after this answers. "
                           "A subtask already running finishes, but its result is not used.")
async def cancel_job(request: Request, job_id: str) -> JSONResponse:
    status = await asyncio.to_thread(state_of(request).jobs.cancel, job_id)
    return JSONResponse(status_code=202, content={"job_id": job_id, "status": status})
