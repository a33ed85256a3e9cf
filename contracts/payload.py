"""The JSON message that travels from stage to stage.

It carries IDs, settings and artifact keys, never media bytes and never the user's
or the model's words: the texts of a job are artifacts (``contracts.job_texts``),
the request's text, history and persona in the context artifact (``context_key``).
Each stage validates it on arrival, fills in its own output and hands it to the
next stage in ``plan``. ``Stage`` is the wire name of a stage; what a stage *is* (task,
queue, package) is ``pipeline.stages``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.artifacts import is_key
from contracts.telemetry import TRACEPARENT_PATTERN

Stage = Literal["asr", "llm", "tts", "animation"]
Mode = Literal["chat", "speak", "lipsync"]


class Turn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class JobPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    session_id: str
    mode: Mode
    plan: list[Stage] = Field(min_length=1)
    portrait_key: str
    audio_key: str | None = None
    # The job's context (``contracts.job_texts.JobContext``): the typed text, the session history, the
    # persona's system prompt. None in lipsync jobs, which have no text.
    context_key: str | None = None
    language: str | None = None
    voice: str | None = None
    face_index: int = Field(default=0, ge=0)  # the face to animate, 0 the largest (request field `face`)
    cache_key: str | None = None
    # The stage offers (``contracts.catalog``) the cache key stands for: stage → offer digest.
    stage_digests: dict[str, str] = Field(default_factory=dict)
    # The message priority of the key's tier, and when the job was accepted (Unix seconds): a job that has
    # waited is published one level higher per ``auth.priority_aging_seconds`` (``pipeline.dispatch``).
    priority: int = Field(default=0, ge=0, le=255)
    accepted_at: float | None = None
    # Which published copy of a task this is: the sweeper may publish a waiting task again, higher; the
    # first copy to start claims the task, and any other copy is dropped (``pipeline.claims``).
    copy_id: str = ""
    # Sentence streaming: the reply is cut into sentences, each rendered as its own segment.
    stream: bool = False
    segment: int | None = Field(default=None, ge=0)  # set on a segment's TTS and animation payloads
    segment_text_key: str | None = None  # the sentence a segment says (a text artifact)
    # The job's W3C trace context (contracts.telemetry): every log line of the job names its trace ID.
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT_PATTERN)

    # Filled in by the stages; texts as text artifacts.
    transcript_key: str | None = None
    detected_language: str | None = None
    reply_key: str | None = None
    speech_key: str | None = None
    speech_seconds: float | None = None
    timings_key: str | None = None  # JSON artifact: phoneme or word timings of the speech
    video_key: str | None = None

    @field_validator("portrait_key", "audio_key", "context_key", "segment_text_key", "transcript_key", "reply_key",
                     "speech_key", "timings_key", "video_key")
    @classmethod
    def _artifact_key(cls, value: str | None) -> str | None:
        if value is not None and not is_key(value):
            raise ValueError("not an artifact key")
        return value

    @property
    def stage(self) -> Stage:
        return self.plan[0]

    def with_outputs(self, **outputs: object) -> "JobPayload":
        """This payload with the current stage's outputs filled in (validated)."""
        return JobPayload.model_validate({**self.model_dump(), **outputs})

    def for_next_stage(self) -> "JobPayload | None":
        """The payload for the next stage of the plan, or None after the last one."""
        if len(self.plan) == 1:
            return None
        return self.model_copy(update={"plan": self.plan[1:]})


def plan_for(mode: Mode, has_audio: bool) -> list[Stage]:
    if mode == "chat":
        return ["asr", "llm", "tts", "animation"] if has_audio else ["llm", "tts", "animation"]
    if mode == "speak":
        return ["tts", "animation"]
    return ["animation"]
