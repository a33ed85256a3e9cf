"""``GET /v1/voices``: the voices a job may name, as the TTS workers publish them in their offer."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request

from coordinator.auth import caller
from coordinator.context import state_of

router = APIRouter(dependencies=[Depends(caller)])


@router.get("/v1/voices", summary="The voices a job may name, with their languages and backends")
async def voices(request: Request) -> dict[str, Any]:
    tts = await asyncio.to_thread(state_of(request).catalog.offer, "tts")
    if tts is None:  # no TTS worker has started yet
        return {"voices": [], "default_backend": None, "backend_for_language": {}}
    return {
        "voices": [{"name": v.name, "backend": v.backend, "languages": list(v.languages), "default": v.default}
                   for v in tts.voices],
        "default_backend": tts.default_backend,
        "backend_for_language": tts.language_routes,
    }
