"""``/v1/sessions``: start a session, optionally with a persona; read it with its turns; delete it.

A session's persona (system prompt, voice, avatar) is used by its jobs unless a
job names its own (``coordinator.personas``). It belongs to the API key that made
it; ``DELETE`` removes it with its jobs and every file and cached render they
named (``coordinator.erasure``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from coordinator import admission
from coordinator.auth import Caller, caller
from coordinator.context import state_of, urls_of
from coordinator.errors import ApiError
from coordinator.personas import avatar_or_404, session_or_404
from coordinator.store.models import SessionRow
from coordinator.store.repo import TERMINAL, JobStore
from coordinator.views import session_view, turn_view

router = APIRouter(dependencies=[Depends(caller)])


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(default=None, description="the persona: the LLM's system prompt")
    voice: str | None = Field(default=None, max_length=128, description="default TTS voice of the session's jobs")
    avatar: str | None = Field(default=None, description="avatar ID (POST /v1/avatars) used when a job has no portrait")


def _create_session(store: JobStore, body: SessionCreate, max_chars: int, who: Caller) -> SessionRow:
    system_prompt = body.system_prompt.strip() if body.system_prompt else None
    if system_prompt is not None and len(system_prompt) > max_chars:
        raise ApiError(422, "system_prompt_too_long",
                       f"`system_prompt` has {len(system_prompt)} characters; the limit is {max_chars}")
    avatar_id = avatar_or_404(store, body.avatar, who).id if body.avatar else None
    row = SessionRow(id=str(uuid.uuid4()), owner_id=who.key_id, system_prompt=system_prompt or None,
                     voice=body.voice or None, avatar_id=avatar_id)
    return store.create_session(row)


@router.post("/v1/sessions", status_code=201, summary="Start a session, optionally with a persona",
             description="JSON body (all optional): `system_prompt`, `voice`, `avatar`. "
                         "The session's jobs use them unless they name their own.")
async def create_session(request: Request, body: SessionCreate | None = None,
                         who: Caller = Depends(caller)) -> JSONResponse:
    state = state_of(request)
    body = body or SessionCreate()
    if body.voice:
        admission.check_voice(body.voice, None, await asyncio.to_thread(state.catalog.offer, "tts"))
    row = await asyncio.to_thread(_create_session, state.store, body, state.settings.limits.max_system_prompt_chars,
                                  who)
    return JSONResponse(status_code=201, content=session_view(row, urls_of(request)))


@router.get("/v1/sessions/{session_id}", summary="A session and its turns")
async def get_session(request: Request, session_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    state = state_of(request)
    row = await asyncio.to_thread(session_or_404, state.store, session_id, who)
    jobs = await asyncio.to_thread(state.store.session_jobs, session_id)
    urls = urls_of(request)
    return {**session_view(row, urls), "turns": [turn_view(job, urls) for job in jobs]}


@router.delete("/v1/sessions/{session_id}", summary="Delete a session with its jobs, files and cached renders",
               description="Removes the session's jobs and their events (transcripts, replies), the photos, "
                           "audio, speech and videos they named (unless something that remains names them too), "
                           "and their cached videos and transcripts. Jobs still running end `cancelled` first.")
async def delete_session(request: Request, session_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    state = state_of(request)
    await asyncio.to_thread(session_or_404, state.store, session_id, who)
    for job in await asyncio.to_thread(state.store.session_jobs, session_id):
        if job.status not in TERMINAL:  # nothing of it may start again, nor write into what goes now
            try:
                await asyncio.to_thread(state.jobs.cancel, job.id)
            except ApiError as e:
                if e.code != "job_finished":  # it ended meanwhile: nothing to stop
                    raise
    erased = await asyncio.to_thread(state.eraser.session, session_id)
    return {"session_id": session_id, "deleted": True, "jobs": erased.jobs, "files": erased.files,
            "cache_entries": erased.cache_entries}
