"""``POST /v1/portraits/check``: is there a face in this photo? Answered before a job is sent.

The web page calls it as soon as a portrait is picked. The photo goes through the
same limits as a job's or an avatar's portrait (the body limit, ``check_image``)
and is then searched with a Haar cascade (``coordinator.facecheck``); nothing is
stored, so no upload quota is charged. Faces come back largest first; a photo
without one answers 422 ``no_face``, one whose face is too small 422
``face_too_small``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile

from coordinator import admission
from coordinator.auth import caller
from coordinator.context import state_of
from coordinator.errors import ApiError
from coordinator.facecheck import face_checker

router = APIRouter(dependencies=[Depends(caller)])


@router.post("/v1/portraits/check", summary="Look for faces in a portrait before sending a job",
             description="multipart `portrait` (image). Answers the faces found, largest first, in pixels of the "
                         "upright image; 422 `no_face` or `face_too_small` when there is none the farm could use.")
async def check_portrait(
    request: Request,
    portrait: Annotated[UploadFile | None, File(description="portrait photo (JPEG, PNG, WebP, ...)")] = None,
) -> dict[str, Any]:
    state = state_of(request)
    if portrait is None:
        raise ApiError(422, "portrait_required", "a `portrait` image file is required")
    data = await portrait.read()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(state.decode_pool, admission.check_image, data, state.settings.limits)
    found = await loop.run_in_executor(state.decode_pool, face_checker(state.settings).check, data)
    return {
        "width": found.width,
        "height": found.height,
        "faces": [{"left": b.left, "top": b.top, "right": b.right, "bottom": b.bottom} for b in found.faces],
    }
