"""What a job takes from its session and avatar: the persona (system prompt, voice) and the portrait.

A session created with ``POST /v1/sessions`` may carry a persona: a system prompt
for the LLM, a TTS voice and an avatar (a portrait saved once with
``POST /v1/avatars``). Its jobs use them unless the job names its own voice or
portrait. Blocking (the job store); called through ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass

from coordinator import admission
from coordinator.auth import Caller
from coordinator.errors import ApiError
from coordinator.store.models import AvatarRow, SessionRow
from coordinator.store.repo import JobStore


@dataclass(frozen=True)
class Persona:
    """What a job takes from its session (and avatar) when it does not say otherwise."""

    system_prompt: str | None = None
    voice: str | None = None
    portrait_key: str | None = None


def avatar_or_404(store: JobStore, avatar_id: str, who: Caller) -> AvatarRow:
    """The avatar; 404 ``avatar_not_found`` when there is none or another key made it."""
    avatar = store.get_avatar(admission.check_uuid(avatar_id, "avatar"))
    if avatar is None or not who.owns(avatar.owner_id):
        raise ApiError(404, "avatar_not_found", f"no avatar {avatar_id[:60]}; create one with POST /v1/avatars")
    return avatar


def session_or_404(store: JobStore, session_id: str, who: Caller) -> SessionRow:
    """The session; 404 ``session_not_found`` when there is none or another key made it."""
    session = store.get_session(admission.check_uuid(session_id, "session_id"))
    if session is None or not who.owns(session.owner_id):
        raise ApiError(404, "session_not_found", f"no session {session_id[:60]}")
    return session


def resolve_persona(store: JobStore, session_id: str | None, avatar_id: str | None, who: Caller) -> Persona:
    """The persona of ``session_id`` (if any), with ``avatar_id``'s portrait in place of the session's.

    Raises 404 ``session_not_found`` or ``avatar_not_found`` (also for another key's).
    """
    session = session_or_404(store, session_id, who) if session_id is not None else None
    avatar_id = avatar_id or (session.avatar_id if session is not None else None)
    portrait_key = avatar_or_404(store, avatar_id, who).portrait_key if avatar_id else None
    if session is None:
        return Persona(portrait_key=portrait_key)
    return Persona(session.system_prompt, session.voice, portrait_key)
