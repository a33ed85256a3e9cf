"""The HTTP API (``/v1``) and the health endpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from cache.results import namespace_stats
from coordinator import admission
from coordinator.context import job_or_404, public_base, runtime_of, voice_catalog
from coordinator.errors import ApiError
from coordinator.jobs import JobRequest, JobService
from coordinator.sessions import faq_stats, session_view
from coordinator.sessions import router as sessions_router
from coordinator.sse import job_event_stream
from coordinator.stream_routes import is_streamed, streaming_view
from coordinator.views import job_urls, job_view, turn_view
from workers.payload import STAGES

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
    rt = runtime_of(request)
    limits = rt.settings.limits
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
    if voice:
        await asyncio.to_thread(admission.check_voice, voice, language, voice_catalog(request))

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
    service: JobService = rt.jobs
    submitted = await asyncio.to_thread(service.submit, job_request)
    base = public_base(request)
    return JSONResponse(status_code=202, content={
        "job_id": submitted.job_id,
        "session_id": submitted.session_id,
        "status": submitted.status,
        "cached": submitted.cached,
        "urls": job_urls(base, submitted.job_id, submitted.session_id),
    })


@router.get("/v1/jobs/{job_id}", summary="Job status, stage timings, transcript and reply")
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    rt = runtime_of(request)
    job, stages = await job_or_404(rt, job_id)
    streamed = await asyncio.to_thread(is_streamed, rt, job_id)
    segments = await asyncio.to_thread(rt.store.events_of_kind, job_id, "segment") if streamed else []
    base = public_base(request)
    return {**job_view(job, stages, base), **streaming_view(job, segments, streamed, base)}


@router.get("/v1/jobs/{job_id}/events", summary="Server-sent events as the stages progress")
async def job_events(request: Request, job_id: str,
                     last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    rt = runtime_of(request)
    await job_or_404(rt, job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return StreamingResponse(job_event_stream(rt.store, rt.watchers, job_id, after, public_base(request)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/v1/jobs/{job_id}/video", summary="The MP4 (H.264 + AAC, faststart, range requests)",
            response_class=FileResponse)
async def job_video(request: Request, job_id: str) -> FileResponse:
    rt = runtime_of(request)
    job, _ = await job_or_404(rt, job_id)
    if job.status != "succeeded" or not job.video_key:
        code = "job_failed" if job.status == "failed" else "video_not_ready"
        raise ApiError(409, code, f"job {job_id} is {job.status}; it has no video")
    path = rt.artifacts.path(job.video_key)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, "video_gone", "the video was removed from the artifact store")
    return FileResponse(path, media_type="video/mp4", filename=f"{job_id}.mp4",
                        content_disposition_type="inline")


@router.get("/v1/sessions/{session_id}", summary="A session and its turns")
async def get_session(request: Request, session_id: str) -> dict[str, Any]:
    rt = runtime_of(request)
    row = await asyncio.to_thread(rt.store.get_session, session_id)
    if row is None:
        raise ApiError(404, "session_not_found", f"no session {session_id}")
    jobs = await asyncio.to_thread(rt.store.session_jobs, session_id)
    return {**session_view(row, public_base(request)), "turns": [turn_view(job, public_base(request)) for job in jobs]}


@router.get("/v1/stats", summary="Cache hits and misses (video, FAQ, ASR), queue backlog")
async def stats(request: Request) -> dict[str, Any]:
    rt = runtime_of(request)
    cache = await asyncio.to_thread(rt.cache.stats)
    depth = {}
    for stage in STAGES:
        depth[stage] = await asyncio.to_thread(rt.jobs.backlog.depth, stage)
    faq = await asyncio.to_thread(faq_stats, rt.settings)
    asr = await asyncio.to_thread(namespace_stats, rt.settings, "asr")
    return {"video_cache": cache, "faq_cache": faq, "asr_cache": asr, "queue_depth": depth}


@router.get("/v1/voices", summary="The voices a job may name, with their languages and backends")
async def voices(request: Request) -> dict[str, Any]:
    settings = runtime_of(request).settings
    listed = await asyncio.to_thread(voice_catalog(request).voices)
    return {
        "voices": [{"name": v.name, "backend": v.backend, "languages": list(v.languages), "default": v.default}
                   for v in listed],
        "default_backend": settings.tts.backend,
        "backend_for_language": dict(settings.tts.backend_for_language),
    }


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The broker, Redis and the database answer")
async def readyz(request: Request) -> JSONResponse:
    checks = await asyncio.to_thread(runtime_of(request).check_dependencies)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


router.include_router(sessions_router)  # /v1/sessions (POST), /v1/avatars
