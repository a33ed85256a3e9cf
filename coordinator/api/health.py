"""Liveness, readiness and the farm's counters: ``/healthz``, ``/readyz``, ``/v1/stats``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cache.faq import NAMESPACE as FAQ_NAMESPACE
from cache.store import namespace_stats
from coordinator.context import state_of
from pipeline.stages import STAGE_NAMES

router = APIRouter()


@router.get("/v1/stats", summary="Cache hits and misses (video, FAQ, ASR), queue backlog")
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


@router.get("/readyz", summary="The broker, Redis and the database answer")
async def readyz(request: Request) -> JSONResponse:
    checks = await asyncio.to_thread(state_of(request).check_dependencies)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)
