"""What a route handler reads off the request: the process's state, the URL builder, a job.

Shared by the routers in ``coordinator.api``; it imports the state only for
typing, so any router may use it without an import cycle.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from fastapi import Request

from coordinator.auth import Caller
from coordinator.errors import ApiError
from coordinator.store.models import JobRow, StageRunRow
from coordinator.urls import Urls

if TYPE_CHECKING:
    from coordinator.state import AppState


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.talkfarm
    return state


def urls_of(request: Request) -> Urls:
    """URLs rooted at the ``public_url`` setting, else at the address the request came in on."""
    return Urls(state_of(request).settings.public_url or str(request.base_url).rstrip("/"))


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


async def job_or_404(state: AppState, job_id: str, who: Caller) -> tuple[JobRow, list[StageRunRow]]:
    """The job and its stage runs; 404 ``job_not_found`` when there is no such job or another key made it."""
    found = await asyncio.to_thread(state.store.get_job, job_id) if is_uuid(job_id) else None
    if found is None or not who.owns(found[0].owner_id):
        raise ApiError(404, "job_not_found", f"no job {job_id[:60]}")
    return found
