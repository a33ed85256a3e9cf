"""What a route handler reads off the request: the process's runtime, the public base URL, the voices, a job.

Shared by the routers (``routes``, ``sessions``, ``stream_routes``); it imports the
runtime only for typing, so any router may use it without an import cycle.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import Request

from coordinator.errors import ApiError
from coordinator.store.models import JobRow, StageRunRow
from workers.tts.voices import VoiceCatalog

if TYPE_CHECKING:
    from coordinator.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def public_base(request: Request) -> str:
    """The root of the URLs in answers: the `public_url` setting, else the address the request came in on."""
    return runtime_of(request).settings.public_url or str(request.base_url).rstrip("/")


def voice_catalog(request: Request) -> VoiceCatalog:
    """The TTS voice catalog of this process (voices from settings and folders, no model loaded)."""
    catalog: VoiceCatalog | None = getattr(request.app.state, "voices", None)
    if catalog is None:
        catalog = request.app.state.voices = VoiceCatalog(runtime_of(request).settings)
    return catalog


async def job_or_404(rt: Runtime, job_id: str) -> tuple[JobRow, list[StageRunRow]]:
    """The job and its stage runs; 404 ``job_not_found`` when the store has no such job."""
    found = await asyncio.to_thread(rt.store.get_job, job_id)
    if found is None:
        raise ApiError(404, "job_not_found", f"no job {job_id}")
    return found
