"""The HTTP API, one router per resource: jobs, their streams, sessions, avatars, voices, health."""

from __future__ import annotations

from fastapi import APIRouter

from coordinator.api import avatars, health, jobs, sessions, streams, voices

ROUTERS: tuple[APIRouter, ...] = (jobs.router, streams.router, sessions.router, avatars.router, voices.router,
                                  health.router)
