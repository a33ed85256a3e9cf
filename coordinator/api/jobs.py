"""``/v1/jobs``: submit a job, read it, follow its events, fetch its video, cancel it.

Every route needs an API key (``coordinator.auth``); a job another key made answers
404. A submit may carry an ``Idempotency-Key``: sent again with the same request it
answers the same job, with another request 422 ``idempotency_conflict``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Callable, TypeVar

from fastapi import APIRouter, Depends, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from contracts.logs import bind
from contracts.payload import Mode
from coordinator import admission
from coordinator.auth import Caller, caller
from coordinator.context import job_or_404, state_of, urls_of
from coordinator.errors import ApiError
from coordinator.jobs import JobRequest, Submitted
from coordinator.metrics import observe_cancelled, observe_submitted
from coordinator.sse import job_event_stream
from coordinator.state import AppState
from coordinator.streams import is_streamed
from coordinator.views import job_view, streaming_view

router = APIRouter(dependencies=[Depends(caller)])
log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 255


async def decoded(state: AppState, check: Callable[..., T], *args: Any) -> T:
    """Run an upload check in the coordinator's decode pool (bounded, apart from the default executor)."""
    return await asyncio.get_running_loop().run_in_executor(state.decode_pool, check, *args)


def fingerprint(fields: dict[str, Any], uploads: dict[str, bytes | None]) -> str:
    """What makes two submits the same request: their fields and the bytes of their files."""
    digests = {name: hashlib.sha256(data).hexdigest() if data is not None else None for name, data in uploads.items()}
    return hashlib.sha256(json.dumps({"fields": fields, "files": digests}, sort_keys=True).encode()).hexdigest()


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
    idempotency_key: Annotated[str | None, Header(
        description="the same key with the same request answers the same job (kept a day)",
    )] = None,
    who: Caller = Depends(caller),
) -> JSONResponse:
    state = state_of(request)
    limits = state.settings.limits
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
                                            and idempotency_key.isprintable()):
        raise ApiError(422, "bad_idempotency_key",
                       f"`Idempotency-Key` is 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
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
    await asyncio.to_thread(_check_speech, state, checked_mode, clean_text, language or None, voice or None)

    portrait_bytes, portrait_ext = None, "bin"
    if portrait is not None:  # else the avatar's, or the session's avatar
        portrait_bytes = await portrait.read()
        portrait_ext = await decoded(state, admission.check_image, portrait_bytes, limits)
    audio_bytes = None
    if audio is not None:
        audio_bytes = (await decoded(state, admission.check_audio, await audio.read(), limits)).data

    job_id = str(uuid.uuid4())
    if idempotency_key is not None:
        fields = {"mode": checked_mode, "text": clean_text, "session_id": session_id, "language": language,
                  "voice": voice, "avatar": avatar, "face": face_index, "stream": stream}
        found = await asyncio.to_thread(state.idempotency.record, who.key_id, idempotency_key,
                                        fingerprint(fields, {"portrait": portrait_bytes, "audio": audio_bytes}), job_id)
        if found.job_id != job_id:
            return await _replay(request, state, who, found.job_id, found.fingerprint,
                                 fingerprint(fields, {"portrait": portrait_bytes, "audio": audio_bytes}))
    job_request = JobRequest(mode=checked_mode, portrait=portrait_bytes, portrait_ext=portrait_ext,
                             session_id=session_id, audio=audio_bytes,
                             audio_ext=_suffix(audio) if audio is not None else "bin",
                             text=clean_text, language=language or None, voice=voice or None, stream=stream,
                             face_index=face_index, avatar_id=avatar, job_id=job_id)
    try:
        submitted = await asyncio.to_thread(_admit, state, job_request, who)
    except Exception:
        if idempotency_key is not None:  # nothing was accepted: the same key may be tried again
            await asyncio.to_thread(state.idempotency.forget, who.key_id, idempotency_key, job_id)
        raise
    bind(job_id=submitted.job_id, session_id=submitted.session_id)
    observe_submitted(submitted.job_id, checked_mode, submitted.cached)
    log.info("%s job accepted (%s)", checked_mode, "answered from the video cache" if submitted.cached else "queued")
    return _accepted(request, submitted)


# Each runs in one trip to a thread: under load every hop between the event loop and a thread waits for a core.
def _check_speech(state: AppState, mode: Mode, text: str | None, language: str | None, voice: str | None) -> None:
    """The voice and the text against what the TTS stage offers (422 when it cannot say them)."""
    tts = state.catalog.offer("tts")
    if voice:
        admission.check_voice(voice, language, tts)
    admission.check_speech(mode, text, language, tts)


def _admit(state: AppState, job_request: JobRequest, who: Caller) -> Submitted:
    """The key's jobs in flight and upload quota checked, then the job submitted."""
    if who.key_id:
        state.jobs.check_in_flight(who)  # before the upload counts against the day
        size = len(job_request.portrait or b"") + len(job_request.audio or b"")
        state.quotas.charge_upload(who.key_id, size, who.limits)
    return state.jobs.submit(job_request, who)


def _accepted(request: Request, submitted: Submitted) -> JSONResponse:
    return JSONResponse(status_code=202, content={
        "job_id": submitted.job_id,
        "session_id": submitted.session_id,
        "status": submitted.status,
        "cached": submitted.cached,
        "urls": urls_of(request).job_links(submitted.job_id, submitted.session_id),
    })


async def _replay(request: Request, state: AppState, who: Caller, job_id: str, recorded: str,
                  sent: str) -> JSONResponse:
    """The answer to a submit whose Idempotency-Key was used before."""
    if recorded != sent:
        raise ApiError(422, "idempotency_conflict",
                       "this Idempotency-Key was used with another request; use a new key for a new request")
    found = await asyncio.to_thread(state.store.get_job, job_id)
    if found is None:  # the first request with this key is still being submitted
        raise ApiError(409, "idempotency_in_progress", "the first request with this Idempotency-Key is not done yet",
                       headers={"Retry-After": "1"})
    job = found[0]
    return _accepted(request, Submitted(job.id, job.session_id, job.status, cached=bool(job.cached)))


@router.get("/v1/jobs/{job_id}", summary="Job status, stage timings, transcript and reply")
async def get_job(request: Request, job_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    state = state_of(request)
    job, stages = await job_or_404(state, job_id, who)
    streamed = await asyncio.to_thread(is_streamed, state.store, job_id)
    segments = await asyncio.to_thread(state.store.events_of_kind, job_id, "segment") if streamed else []
    urls = urls_of(request)
    return {**job_view(job, stages, urls), **streaming_view(job, segments, streamed, urls)}


@router.get("/v1/jobs/{job_id}/events", summary="Server-sent events as the stages progress")
async def job_events(request: Request, job_id: str, last_event_id: Annotated[str | None, Header()] = None,
                     who: Caller = Depends(caller)) -> StreamingResponse:
    state = state_of(request)
    await job_or_404(state, job_id, who)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    stream = await asyncio.to_thread(state.quotas.open_stream, who.key_id, who.limits)
    keep = lambda: state.quotas.keep_stream(who.key_id, stream)  # noqa: E731

    async def frames() -> AsyncIterator[str]:
        try:
            async for frame in job_event_stream(state.store, state.watchers, job_id, urls_of(request), after, keep):
                yield frame
        finally:
            await asyncio.to_thread(state.quotas.close_stream, who.key_id, stream)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/v1/jobs/{job_id}/video", summary="The MP4 (H.264 + AAC, faststart, range requests)",
            response_class=FileResponse)
async def job_video(request: Request, job_id: str, who: Caller = Depends(caller)) -> FileResponse:
    state = state_of(request)
    job, _ = await job_or_404(state, job_id, who)
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
async def cancel_job(request: Request, job_id: str, who: Caller = Depends(caller)) -> JSONResponse:
    state = state_of(request)
    job, _ = await job_or_404(state, job_id, who)
    status = await asyncio.to_thread(state.jobs.cancel, job_id)
    state.notifier.changed(job_id)
    observe_cancelled(job_id, job.mode)
    return JSONResponse(status_code=202, content={"job_id": job_id, "status": status})
