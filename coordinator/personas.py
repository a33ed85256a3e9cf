"""What a job takes from its session and avatar: the persona (system prompt, voice) and the portrait.

A session created with ``POST /v1/sessions`` may carry a persona: a system prompt
for the LLM, a TTS voice and an avatar (a portrait saved once with
``POST /v1/avatars``). Its jobs use them unless the job names its own voice or
portrait. Blocking (the job store); called through ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass

from coordinator import admission
from coordinator.errors import ApiError
from coordinator.store.models import AvatarRow
from coordinator.store.repo import JobStore


@dataclass(frozen=True)
class Persona:
    """What a job takes from its session (and avatar) when it does not say otherwise."""

    system_prompt: str | None = None
    voice: str | None = None
    portrait_key: str | None = None


def avatar_or_404(store: JobStore, avatar_id: str) -> AvatarRow:
    avatar = store.get_avatar(admission.check_uuid(avatar_id, "avatar"))
    if avatar is None:
        raise ApiError(404, "avatar_not_found", f"no avatar {avatar_id}; create one with POST /v1/avatars")
    return avatar


def resolve_persona(store: JobStore, session_id: str | None, avatar_id: str | None) -> Persona:
    """The persona of ``session_id`` (if any), with ``avatar_id``'s portrait in place of the session's.

    Raises 404 ``session_not_found`` or ``avatar_not_found``.
    """
    session = None
    if session_id is not None:
        session = store.get_session(session_id)
        if session is None:
            raise ApiError(404, "session_not_found", f"no session {session_id}")
    avatar_id = avatar_id or (session.avatar_id if session is not None else None)
    portrait_key = avatar_or_404(store, avatar_id).portrait_key if avatar_id else None
    if session is None:
        return Persona(portrait_key=portrait_key)
    return Persona(session.system_prompt, session.voice, portrait_key)
