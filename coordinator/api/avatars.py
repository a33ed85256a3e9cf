"""``/v1/avatars``: a portrait uploaded once (checked like a job's portrait) and named by its ID from then on,
in jobs (``avatar`` instead of a ``portrait`` upload) and in sessions. The animation stage prepares a
portrait once per content hash, so a reused avatar is not prepared again. An avatar belongs to the API key
that saved it; ``DELETE`` removes it with its photo and the prepared analysis of it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from coordinator import admission
from coordinator.auth import Caller, caller
from coordinator.context import state_of, urls_of
from coordinator.errors import ApiError
from coordinator.personas import avatar_or_404
from coordinator.store.models import ArtifactRow, AvatarRow
from coordinator.views import avatar_view

router = APIRouter(dependencies=[Depends(caller)])


@router.post("/v1/avatars", status_code=201, summary="Save a portrait as an avatar, reusable by ID",
             description="multipart `portrait` (image), checked like a job's portrait.")
async def create_avatar(
    request: Request,
    portrait: Annotated[UploadFile | None, File(description="portrait photo (JPEG, PNG, WebP, ...)")] = None,
    who: Caller = Depends(caller),
) -> JSONResponse:
    state = state_of(request)
    if portrait is None:
        raise ApiError(422, "portrait_required", "a `portrait` image file is required")
    data = await portrait.read()
    ext = await asyncio.get_running_loop().run_in_executor(state.decode_pool, admission.check_image, data,
                                                           state.settings.limits)
    if who.key_id:
        await asyncio.to_thread(state.quotas.charge_upload, who.key_id, len(data), who.limits)

    def save() -> AvatarRow:
        stored = state.artifacts.put_bytes(data, ext)
        avatar = AvatarRow(id=str(uuid.uuid4()), owner_id=who.key_id, portrait_key=stored.key)
        return state.store.create_avatar(avatar, ArtifactRow(key=stored.key, kind="portrait", size=stored.size))

    avatar = await asyncio.to_thread(save)
    return JSONResponse(status_code=201, content=avatar_view(avatar, urls_of(request)))


@router.get("/v1/avatars/{avatar_id}", summary="A saved avatar")
async def get_avatar(request: Request, avatar_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    avatar = await asyncio.to_thread(avatar_or_404, state_of(request).store, avatar_id, who)
    return avatar_view(avatar, urls_of(request))


@router.get("/v1/avatars/{avatar_id}/portrait", summary="A saved avatar's portrait image",
            response_class=FileResponse)
async def get_avatar_portrait(request: Request, avatar_id: str, who: Caller = Depends(caller)) -> FileResponse:
    state = state_of(request)
    avatar = await asyncio.to_thread(avatar_or_404, state.store, avatar_id, who)
    path = state.artifacts.path(avatar.portrait_key)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, "portrait_gone", "the avatar's portrait was removed from the artifact store")
    return FileResponse(path)


@router.delete("/v1/avatars/{avatar_id}", summary="Delete a saved avatar and its photo",
               description="Sessions that used it have no portrait afterwards; the photo goes unless a job or "
                           "another avatar still names it.")
async def delete_avatar(request: Request, avatar_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    state = state_of(request)
    avatar = await asyncio.to_thread(avatar_or_404, state.store, avatar_id, who)
    erased = await asyncio.to_thread(state.eraser.avatar, avatar.id, avatar.portrait_key)
    return {"avatar_id": avatar.id, "deleted": True, "files": erased.files}
