"""What the running workers of a stage serve: their offer, published when they start.

An offer names the stage's backends and their versions and the settings that shape
the stage's output; its ``digest`` is part of every request's cache key, so a video
is served from the cache only when workers of the same backends, versions and
settings would make it again. The coordinator never imports a stage package: it
reads the offers (``pipeline.catalog``) instead, which is also right when the
coordinator and the workers run different images. The TTS stage adds its voices
and language routes, from which the coordinator checks a job's voice and
language, and its front end's version, which is in its digest.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.voices import VoiceInfo


class StageOffer(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    digest: str  # content hash of backends, versions and shaping settings
    backends: dict[str, str]  # backend name → version; the first is the stage's default
    shaping: dict[str, Any] = Field(default_factory=dict)
    # TTS only: the voices a job may name, the language → backend routes, the default backend, and the
    # version of the spoken-text front end it reads texts with (``contracts.text.spoken.FRONTEND_VERSION``).
    voices: list[VoiceInfo] = Field(default_factory=list)
    language_routes: dict[str, str] = Field(default_factory=dict)
    default_backend: str = ""
    frontend: str = ""
    published_at: float = Field(default_factory=time.time)
