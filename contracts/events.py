"""Progress events from the stage workers to the coordinator: what one event says.

Workers publish them through ``pipeline.events``; the coordinator's event consumer
persists them in the job store. ``event_id`` makes a redelivered event
recognisable, so the store keeps each event once.

An event carries no user or model text: where it reports a text (``transcript``,
``reply``, ``spoken_reply``, ``spoken_text``, a segment's ``text``), ``data["texts"]``
maps the field to the key of the text artifact that holds it (``contracts.job_texts``),
and the coordinator fills the field in when it applies the event (``resolve_texts``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

# The event data field that maps a text field to its text artifact's key (None: the field is null).
TEXTS = "texts"

EventKind = Literal["queued", "started", "retrying", "finished", "failed", "completed", "segment", "cancelled"]


class JobEvent(BaseModel):
    job_id: str
    session_id: str
    stage: str
    kind: EventKind
    at: float = Field(default_factory=time.time)
    seconds: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)


def segment_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Event data of a segment's stage: the keys prefixed with ``segment_``, so that a segment's
    ``speech_key`` or ``video_key`` is never taken for the job's own (the fields named in ``texts`` too)."""
    prefixed = {f"segment_{k}": v for k, v in summary.items() if k != TEXTS}
    if TEXTS in summary:
        prefixed[TEXTS] = {f"segment_{k}": v for k, v in summary[TEXTS].items()}
    return prefixed


def text_keys(data: dict[str, Any]) -> dict[str, str | None]:
    """The text fields an event's data names, with their artifact keys."""
    named = data.get(TEXTS)
    return {str(k): v if isinstance(v, str) else None for k, v in named.items()} if isinstance(named, dict) else {}


def resolve_texts(data: dict[str, Any], read: Callable[[str], str | None]) -> dict[str, Any]:
    """``data`` with each field named in ``texts`` set to its text (``read`` of its key), the keys kept.

    Data of an older worker, with its texts in their fields and no ``texts``, is returned as it is.
    """
    named = text_keys(data)
    if not named:
        return data
    return {**data, **{field: read(key) if key is not None else None for field, key in named.items()}}
