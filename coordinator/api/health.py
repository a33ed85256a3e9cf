"""Liveness, readiness and the farm's counters: ``/healthz``, ``/readyz``, ``/v1/stats``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from cache.faq import NAMESPACE as FAQ_NAMESPACE
from cache.store import namespace_stats
from coordinator.auth import operator
from coordinator.context import state_of
from pipeline.stages import STAGE_NAMES

router = APIRouter()


@router.get("/v1/stats", summary="Cache hits and misses (video, FAQ, ASR), queue backlog (an operator key)",
            dependencies=[Depends(operator)])
async def stats(request: Request) -> dict[str, Any]:
    state = state_of(request)
    cache = await asyncio.to_thread(state.cache.stats)
    depth = {stage: await asyncio.to_thread(state.jobs.backlog.depth, stage) for stage in STAGE_NAMES}
    faq = await asyncio.to_thread(namespace_stats, state.settings, FAQ_NAMESPACE)
    asr = await asyncio.to_thread(namespace_stats, state.settings, "asr")
    return {"video_cache": cache, "faq_cache": faq, "asr_cache": asr, "queue_depth": depth}


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The broker, the results Redis, the database and the event consumer answer",
            description="200 `ready`; 200 `degraded` when only the cache Redis is down (jobs still succeed); "
                        "503 `not_ready` otherwise, with each check's result.")
async def readyz(request: Request) -> JSONResponse:
    status, checks = await asyncio.to_thread(state_of(request).readiness)
    return JSONResponse({"status": status, "checks": checks}, status_code=503 if status == "not_ready" else 200)
