"""Who is calling: API keys at the door, and what each key may see.

Every ``/v1`` route depends on ``caller``: a request without ``Authorization:
Bearer <token>``, with an unknown token or a revoked one, answers 401
``unauthorized``. The key's tier sets its quotas (``coordinator.quotas``, charged
here, once per request) and its jobs' priority. Every session, avatar and job
belongs to the key that made it; ``Caller.owns`` decides what a key may read, and
anything it may not read answers 404 exactly as an unknown ID does.

Authentication is off only when ``TALKFARM_AUTH__ENABLED=false``: then every
request is the anonymous caller of the default tier, who sees everything.
``/metrics`` and ``/v1/stats`` need an operator key (``talkfarm-admin keys create
--operator``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from contracts.settings import Settings, TierSettings
from coordinator.errors import ApiError
from coordinator.quotas import Quotas
from coordinator.store.keys import KeyStore, token_hash
from coordinator.store.models import ApiKeyRow

ANONYMOUS = ""


@dataclass(frozen=True)
class Caller:
    key_id: str  # "" when authentication is off
    name: str
    tier: str
    operator: bool
    limits: TierSettings

    def owns(self, owner_id: str | None) -> bool:
        """Whether this caller may see something its owner made."""
        return self.key_id == ANONYMOUS or owner_id == self.key_id


class KeyCache:
    """Keys by token hash, trusted for ``ttl`` seconds (a revoked key stops working within that)."""

    def __init__(self, keys: KeyStore, ttl: float) -> None:
        self._keys, self._ttl = keys, ttl
        self._known: dict[str, tuple[float, ApiKeyRow | None]] = {}
        self._lock = threading.Lock()

    def find(self, token: str) -> ApiKeyRow | None:
        digest = token_hash(token)
        now = time.monotonic()
        with self._lock:
            hit = self._known.get(digest)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        row = self._keys.find(token)
        with self._lock:
            if len(self._known) > 10_000:  # wrong tokens must not grow it without bound
                self._known.clear()
            self._known[digest] = (now, row)
        return row


def tier_of(settings: Settings, tier: str) -> TierSettings:
    return settings.auth.tiers.get(tier) or settings.auth.tiers[settings.auth.default_tier]


def anonymous(settings: Settings) -> Caller:
    tier = settings.auth.default_tier
    return Caller(ANONYMOUS, "anonymous", tier, True, tier_of(settings, tier))


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="talkfarm"'})


def _identify(keys: KeyCache, quotas: Quotas, settings: Settings, token: str) -> tuple[Caller, dict[str, str]]:
    """The key of ``token`` (401 when unknown or revoked) and its request charged: its RateLimit-* headers."""
    row = keys.find(token)
    if row is None:
        raise _unauthorized("the API key is unknown or revoked")
    who = Caller(row.id, row.name, row.tier, bool(row.operator), tier_of(settings, row.tier))
    return who, quotas.charge_request(who.key_id, who.limits)


async def caller(request: Request) -> Caller:
    """The FastAPI dependency of every ``/v1`` route: the key of the request, its request rate charged."""
    found: Caller | None = getattr(request.state, "caller", None)
    if found is not None:
        return found
    state = request.app.state.talkfarm
    settings: Settings = state.settings
    if not settings.auth.enabled:
        who = anonymous(settings)
    else:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("send an API key: `Authorization: Bearer <token>` (talkfarm-admin keys create)")
        # One trip to a thread for the lookup and the charge: under load every hop waits for a core.
        who, request.state.ratelimit_headers = await asyncio.to_thread(_identify, state.keys, state.quotas,
                                                                       settings, token.strip())
    request.state.caller = who
    return who


async def operator(request: Request) -> Caller:
    """An operator key (or authentication off): for /metrics and /v1/stats."""
    who = await caller(request)
    if not who.operator:
        raise ApiError(403, "forbidden", "this needs an operator key (talkfarm-admin keys create --operator)")
    return who
