"""The FastAPI application of the coordinator (``uvicorn coordinator.app:create_app --factory``).

Besides the API it serves the web page: ``/`` is ``static/index.html`` and ``/static``
everything the page loads (its scripts, its style, the vendored hls.js), so the page
needs nothing from another site.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from contracts.settings import Settings, get_settings
from coordinator.api import ROUTERS
from coordinator.bodylimit import BodyLimitMiddleware
from coordinator.errors import install_handlers
from coordinator.heap import freeze_startup_heap
from coordinator.metrics import install_queue_collector
from coordinator.metrics import router as metrics_router
from coordinator.observe import ObserveMiddleware, configure_logging
from coordinator.ratelimit_headers import RateLimitHeaders
from coordinator.state import AppState

_STATIC = Path(__file__).parent / "static"
_PAGE = _STATIC / "index.html"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await asyncio.to_thread(AppState.start, settings, asyncio.get_running_loop())
        app.state.talkfarm = state
        freeze_startup_heap()  # full collections then walk only what requests made, not the app itself
        try:
            yield
        finally:
            await asyncio.to_thread(state.stop)

    app = FastAPI(
        title="talkfarm",
        version="0.1.0",
        description="Photo + question in; transcript, reply and a lip-synced talking-head video out.",
        lifespan=lifespan,
    )
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(metrics_router)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    install_queue_collector(settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_upload_bytes)
    app.add_middleware(RateLimitHeaders)
    if settings.auth.cors_origins:  # off by default: only the API's own page calls it from a browser
        app.add_middleware(CORSMiddleware, allow_origins=settings.auth.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID",
                                          "traceparent"],
                           expose_headers=["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                                           "Retry-After", "traceparent"])
    app.add_middleware(ObserveMiddleware)  # outermost: sees every answer, 413 included

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(_PAGE.read_text(encoding="utf-8"))

    configure_logging(settings.log)
    return app
