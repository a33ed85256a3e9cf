"""The Prometheus metrics of the stage workers: one place that names them all.

Names follow ``talkfarm_<subsystem>_<what>_<unit>`` (STYLE 14); labels are
bounded (stage, task kind, backend, outcome, error code), never a job ID.
Worker processes write their samples through prometheus_client's multiprocess
mode (``pipeline.exposition`` sets the folder before this module is imported in a
worker), so a prefork worker's pool processes are summed on one ``/metrics``.

Where each is recorded:

* ``pipeline.observe`` (Celery's task signals): task seconds, outcomes, queue wait;
* the stages' public backend methods (``workers/<stage>/base.py``): LLM time to first
  token and inference duration, TTS synthesis seconds and real-time factor,
  animation frames per second; the ASR task: ASR end-to-end latency;
* ``pipeline.runtime.warm_up``: model load seconds; ``pipeline.calls``: backend call seconds.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds, from 5 ms to 10 minutes: short stage calls and whole renders alike.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300, 600)

TASK_SECONDS = Histogram(
    "talkfarm_stage_task_seconds",
    "Wall time of one stage task, from its start in a worker to its return (streamed segments included)",
    ["stage", "task", "outcome"],  # task: stage | segment | assemble; outcome: ok | failed | retry | cancelled | …
    buckets=SECONDS,
)
FAILURES = Counter(
    "talkfarm_stage_failures_total",
    "Stage tasks that ended a job with an error code",
    ["stage", "code"],
)
QUEUE_WAIT = Histogram(
    "talkfarm_stage_queue_wait_seconds",
    "From a stage task's publication to its start in a worker (first attempts; clocks must agree)",
    ["stage"],
    buckets=SECONDS,
)
MODEL_LOAD_SECONDS = Histogram(
    "talkfarm_model_load_seconds",
    "Time to load a backend's model in a worker process",
    ["stage", "backend"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)

ASR_LATENCY = Histogram(
    "talkfarm_asr_end_to_end_latency_seconds",
    "From the ASR task's publication to its transcript: queue wait, decoding and recognition (cache hits too)",
    ["backend"],
    buckets=SECONDS,
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "talkfarm_llm_time_to_first_token_seconds",
    "From a generation call to its first text delta (the model loaded)",
    ["backend"],
    buckets=SECONDS,
)
LLM_INFERENCE_SECONDS = Histogram(
    "talkfarm_llm_inference_duration_seconds",
    "From a generation call to its last text delta",
    ["backend"],
    buckets=SECONDS,
)
TTS_SYNTHESIS_SECONDS = Histogram(
    "talkfarm_tts_synthesis_duration_seconds",
    "Time to speak one text (all its sentences, phrase-cache hits included)",
    ["backend"],
    buckets=SECONDS,
)
TTS_RTF = Histogram(
    "talkfarm_tts_rtf_ratio",
    "TTS real-time factor: synthesis seconds per second of speech (above 1: slower than speaking)",
    ["backend"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.2, 1.5, 2, 3, 5),
)
ANIMATION_FPS = Histogram(
    "talkfarm_face_animation_fps_actual",
    "Frames rendered per second of render time, per render",
    ["backend"],
    buckets=(1, 2.5, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500),
)
ANIMATION_TARGET_FPS = Gauge(
    "talkfarm_face_animation_fps_target",
    "The video's frame rate (animation.fps): rendering slower than this is slower than real time",
    ["backend"],
    multiprocess_mode="max",
)
