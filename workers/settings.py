"""Typed settings for every talkfarm process.

Read from the environment with the prefix ``TALKFARM_`` and ``__`` for nesting,
e.g. ``TALKFARM_ASR__BACKEND=faster-whisper`` or ``TALKFARM_LIMITS__MAX_TEXT_CHARS=500``.
A ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "talkfarm"


def _default_model_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "talkfarm" / "models"


class StageLimits(BaseModel):
    """What every stage has: its backend's name, time limits in seconds (the soft limit raises
    inside the task, the hard one kills it), retries of transient errors and worker processes."""

    backend: str = ""
    soft_seconds: float = 120.0
    hard_seconds: float = 150.0
    max_retries: int = 3
    concurrency: int = 1


class BrokerSettings(BaseModel):
    url: str = "amqp://guest:guest@127.0.0.1:5672//"
    management_url: str = "http://guest:guest@127.0.0.1:15672/api/"
    # Queues refuse publishes past this length; the coordinator answers 503 before that.
    queue_max_length: int = 10_000
    admission_backlog: int = 2_000
    events_exchange: str = "talkfarm.events"
    events_queue: str = "talkfarm.coordinator.events"
    connect_timeout: float = 5.0


class RedisSettings(BaseModel):
    # Celery results (and counters) live here; the video cache has its own instance.
    results_url: str = "redis://127.0.0.1:6379/0"
    cache_url: str = "redis://127.0.0.1:6380/0"
    socket_timeout: float = 2.0


class ASRSettings(StageLimits):
    backend: str = "faster-whisper"
    model: str = "whisper-base"
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = 1
    cpu_threads: int = 2


class LLMSettings(StageLimits):
    backend: str = "transformers"
    model: str = "smollm2-135m-instruct"
    device: str = "cpu"
    max_new_tokens: int = 60
    temperature: float = 0.0
    top_p: float = 1.0
    history_turns: int = 6
    # A persona ("you are the person in the photo") makes the 135M model role-play
    # instead of answering; this plain prompt keeps its answers sensible.
    system_prompt: str = (
        "You are a friendly, helpful assistant. Give short, direct answers in one to three sentences."
    )
    fallback_reply: str = "Sorry, I have no answer to that."
    torch_threads: int = 2


class TTSSettings(StageLimits):
    backend: str = "piper"
    voice: str = "en_US-joe-medium"
    sample_rate: int = 22050


class AnimationSettings(StageLimits):
    backend: str = "landmark"
    fps: int = 25
    max_side: int = 512
    soft_seconds: float = 600.0
    hard_seconds: float = 660.0


class LimitSettings(BaseModel):
    max_upload_bytes: int = 20 * 1024 * 1024
    max_text_chars: int = 1000
    max_audio_seconds: float = 60.0
    max_image_pixels: int = 40_000_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TALKFARM_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    model_dir: Path = Field(default_factory=_default_model_dir)
    database_url: str = ""
    # Base of the URLs in API answers; empty: the URL the request came in on.
    public_url: str = ""
    # Prefix for every queue and exchange name, so that two farms can share a broker.
    queue_prefix: str = ""

    broker: BrokerSettings = BrokerSettings()
    redis: RedisSettings = RedisSettings()
    asr: ASRSettings = ASRSettings()
    llm: LLMSettings = LLMSettings()
    tts: TTSSettings = TTSSettings()
    animation: AnimationSettings = AnimationSettings()
    limits: LimitSettings = LimitSettings()
    video_cache_ttl_seconds: int = 7 * 24 * 3600

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'talkfarm.db'}"

    def queue_name(self, name: str) -> str:
        return f"{self.queue_prefix}{name}"

    def stage(self, name: str) -> StageLimits:
        limits: StageLimits = getattr(self, name)
        return limits


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
