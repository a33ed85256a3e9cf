"""Sessions with a persona, and saved avatars (``/v1/sessions``, ``/v1/avatars``).

A session created with ``POST /v1/sessions`` may carry a persona: a system
prompt for the LLM, a TTS voice and an avatar. Its jobs use them unless the job
names its own voice or portrait. An avatar is a portrait uploaded once with
``POST /v1/avatars`` (checked like a job's portrait) and named by its ID from
then on, in jobs (``avatar`` form field instead of a ``portrait`` upload) and in
sessions; the animation stage prepares a portrait once per content hash, so a
reused avatar is not prepared again.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cache.faq import NAMESPACE as FAQ_NAMESPACE
from cache.results import namespace_stats
from coordinator import admission
from coordinator.context import public_base, runtime_of, voice_catalog
from coordinator.errors import ApiError
from coordinator.store.models import ArtifactRow, AvatarRow, SessionRow
from coordinator.store.repo import JobStore
from workers.settings import Settings

if TYPE_CHECKING:
    from coordinator.runtime import Runtime

router = APIRouter()


@dataclass(frozen=True)
class Persona:
    """What a job takes from its session (and avatar) when it does not say otherwise."""

    system_prompt: str | None = None
    voice: str | None = None
    portrait_key: str | None = None


def avatar_or_404(store: JobStore, avatar_id: str) -> AvatarRow:
    avatar = store.get_avatar(admission.check_uuid(avatar_id, "avatar"))
    if avatar is None:
        raise ApiError(404, "avatar_not_found", f"no avatar {avatar_id}; create one with POST /v1/avatars")
    return avatar


def resolve_persona(store: JobStore, session_id: str | None, avatar_id: str | None) -> Persona:
    """The persona of ``session_id`` (if any), with ``avatar_id``'s portrait in place of the session's.

    Raises 404 ``session_not_found`` or ``avatar_not_found``.
    """
    session = None
    if session_id is not None:
        session = store.get_session(session_id)
        if session is None:
            raise ApiError(404, "session_not_found", f"no session {session_id}")
    avatar_id = avatar_id or (session.avatar_id if session is not None else None)
    portrait_key = avatar_or_404(store, avatar_id).portrait_key if avatar_id else None
    if session is None:
        return Persona(portrait_key=portrait_key)
    return Persona(session.system_prompt, session.voice, portrait_key)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(default=None, description="the persona: the LLM's system prompt")
    voice: str | None = Field(default=None, max_length=128, description="default TTS voice of the session's jobs")
    avatar: str | None = Field(default=None, description="avatar ID (POST /v1/avatars) used when a job has no portrait")


def session_view(row: SessionRow, base: str) -> dict[str, Any]:
    return {
        "session_id": row.id,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "persona": {"system_prompt": row.system_prompt, "voice": row.voice, "avatar": row.avatar_id},
        "urls": {"session": f"{base}/v1/sessions/{row.id}",
                 "avatar": f"{base}/v1/avatars/{row.avatar_id}" if row.avatar_id else None},
    }


def avatar_view(row: AvatarRow, base: str) -> dict[str, Any]:
    return {
        "avatar_id": row.id,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "urls": {"avatar": f"{base}/v1/avatars/{row.id}", "portrait": f"{base}/v1/avatars/{row.id}/portrait"},
    }


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
    rt = runtime_of(request)
    body = body or SessionCreate()
    if body.voice:
        await asyncio.to_thread(admission.check_voice, body.voice, None, voice_catalog(request))
    row = await asyncio.to_thread(_create_session, rt.store, body, rt.settings.limits.max_system_prompt_chars)
    return JSONResponse(status_code=201, content=session_view(row, public_base(request)))


def _save_avatar(rt: "Runtime", data: bytes, ext: str) -> AvatarRow:
    stored = rt.artifacts.put_bytes(data, ext)
    avatar = AvatarRow(id=str(uuid.uuid4()), portrait_key=stored.key)
    return rt.store.create_avatar(avatar, ArtifactRow(key=stored.key, kind="portrait", size=stored.size))


@router.post("/v1/avatars", status_code=201, summary="Save a portrait as an avatar, reusable by ID",
             description="multipart `portrait` (image), checked like a job's portrait.")
async def create_avatar(
    request: Request,
    portrait: Annotated[UploadFile | None, File(description="portrait photo (JPEG, PNG, WebP, ...)")] = None,
) -> JSONResponse:
    rt = runtime_of(request)
    if portrait is None:
        raise ApiError(422, "portrait_required", "a `portrait` image file is required")
    data = await portrait.read()
    ext = await asyncio.to_thread(admission.check_image, data, rt.settings.limits)
    avatar = await asyncio.to_thread(_save_avatar, rt, data, ext)
    return JSONResponse(status_code=201, content=avatar_view(avatar, public_base(request)))


@router.get("/v1/avatars/{avatar_id}", summary="A saved avatar")
async def get_avatar(request: Request, avatar_id: str) -> dict[str, Any]:
    rt = runtime_of(request)
    avatar = await asyncio.to_thread(avatar_or_404, rt.store, avatar_id)
    return avatar_view(avatar, public_base(request))


@router.get("/v1/avatars/{avatar_id}/portrait", summary="A saved avatar's portrait image",
            response_class=FileResponse)
async def get_avatar_portrait(request: Request, avatar_id: str) -> FileResponse:
    rt = runtime_of(request)
    avatar = await asyncio.to_thread(avatar_or_404, rt.store, avatar_id)
    path = rt.artifacts.path(avatar.portrait_key)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, "portrait_gone", "the avatar's portrait was removed from the artifact store")
    return FileResponse(path)


def faq_stats(settings: Settings) -> dict[str, int]:
    """FAQ answer cache hits and misses (counted by the LLM workers)."""
    return namespace_stats(settings, FAQ_NAMESPACE)
