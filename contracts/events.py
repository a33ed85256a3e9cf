"""Progress events from the stage workers to the coordinator: what one event says.

Workers publish them through ``pipeline.events``; the coordinator's event consumer
persists them in the job store. ``event_id`` makes a redelivered event
recognisable, so the store keeps each event once.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

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
    ``speech_key`` or ``video_key`` is never taken for the job's own."""
    return {f"segment_{k}": v for k, v in summary.items()}
