"""The HTTP API, one router per resource: jobs, their streams, sessions, avatars, the portrait check, voices,
health."""

from __future__ import annotations

from fastapi import APIRouter

from coordinator.api import avatars, health, jobs, portraits, sessions, streams, voices

ROUTERS: tuple[APIRouter, ...] = (jobs.router, streams.router, sessions.router, avatars.router,
                                  portraits.router, voices.router, health.router)
