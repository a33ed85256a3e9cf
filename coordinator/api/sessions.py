"""``/v1/sessions``: start a session, optionally with a persona; read it with its turns.

A session's persona (system prompt, voice, avatar) is used by its jobs unless a
job names its own (``coordinator.personas``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from coordinator import admission
from coordinator.context import state_of, urls_of
from coordinator.errors import ApiError
from coordinator.personas import avatar_or_404
from coordinator.store.models import SessionRow
from coordinator.store.repo import JobStore
from coordinator.views import session_view, turn_view

router = APIRouter()


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(default=None, description="the persona: the LLM's system prompt")
    voice: str | None = Field(default=None, max_length=128, description="default TTS voice of the session's jobs")
    avatar: str | None = Field(default=None, description="avatar ID (POST /v1/avatars) used when a job has no portrait")


def _create_session(store: JobStore, body: SessionCreate, max_chars: int) -> SessionRow:
    system_prompt = body.system_prompt.strip() if body.system_prompt else None
    if system_prompt is not None and len(system_prompt) > max_chars:
        raise ApiError(422, "system_prompt_too_long",
                       f"`system_prompt` has {len(system_prompt)} characters; the limit is {max_chars}")
    avatar_id = avatar_or_404(store, body.avatar).id if body.avatar else None
    row = SessionRow(id=str(uuid.uuid4()), system_prompt=system_prompt or None, voice=body.voice or None,
                     avatar_id=avatar_id)
    return store.create_session(row)


@router.post("/v1/sessions", status_code=201, summary="Start a session, optionally with a persona",
             description="JSON body (all optional): `system_prompt`, `voice`, `avatar`. "
                         "The session's jobs use them unless they name their own.")
async def create_session(request: Request, body: SessionCreate | None = None) -> JSONResponse:
    state = state_of(request)
    body = body or SessionCreate()
    if body.voice:
        admission.check_voice(body.voice, None, await asyncio.to_thread(state.catalog.offer, "tts"))
    row = await asyncio.to_thread(_create_session, state.store, body, state.settings.limits.max_system_prompt_chars)
    return JSONResponse(status_code=201, content=session_view(row, urls_of(request)))


@router.get("/v1/sessions/{session_id}", summary="A session and its turns")
async def get_session(request: Request, session_id: str) -> dict[str, Any]:
    state = state_of(request)
    row = await asyncio.to_thread(state.store.get_session, session_id)
    if row is None:
        raise ApiError(404, "session_not_found", f"no session {session_id}")
    jobs = await asyncio.to_thread(state.store.session_jobs, session_id)
    urls = urls_of(request)
    return {**session_view(row, urls), "turns": [turn_view(job, urls) for job in jobs]}
