"""The Celery application and routing shared by all stages.

One durable queue per stage (``asr``, ``llm``, ``tts``, ``animation``), routed by
task name (``talkfarm.<stage>.<verb>``). JSON only, late acknowledgement,
prefetch 1, per-stage soft and hard time limits, results in the Redis results
instance. Task modules are cheap to import: models load in
``worker_process_init`` (see ``workers.runtime``), never at import.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from workers.payload import STAGES
from workers.settings import Settings, get_settings

TASK_NAMES = {
    "asr": "talkfarm.asr.transcribe",
    "llm": "talkfarm.llm.reply",
    "tts": "talkfarm.tts.synthesize",
    "animation": "talkfarm.animation.render",
}
# Joins a streamed job's segments into its final MP4; runs on the animation queue.
ASSEMBLE_TASK = "talkfarm.animation.assemble"


def stage_queues(settings: Settings) -> list[Queue]:
    exchange = Exchange(settings.queue_name("talkfarm.stages"), type="direct", durable=True)
    arguments = {"x-max-length": settings.broker.queue_max_length, "x-overflow": "reject-publish"}
    return [
        Queue(
            settings.queue_name(stage),
            exchange,
            routing_key=stage,
            durable=True,
            queue_arguments=arguments,
        )
        for stage in STAGES
    ]


def configure(app: Celery, settings: Settings) -> None:
    queues = stage_queues(settings)
    app.conf.update(
        broker_url=settings.broker.url,
        result_backend=settings.redis.results_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=queues,
        task_default_queue=queues[0].name,
        task_create_missing_queues=False,
        task_routes={
            **{TASK_NAMES[stage]: {"queue": settings.queue_name(stage), "routing_key": stage} for stage in STAGES},
            ASSEMBLE_TASK: {"queue": settings.queue_name("animation"), "routing_key": "animation"},
        },
        task_annotations={
            name: {
                "soft_time_limit": settings.stage(stage).soft_seconds,
                "time_limit": settings.stage(stage).hard_seconds,
            }
            for name, stage in [*((TASK_NAMES[s], s) for s in STAGES), (ASSEMBLE_TASK, "animation")]
        },
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.broker.connect_timeout,
        broker_transport_options={"confirm_publish": True},
        redis_socket_timeout=settings.redis.socket_timeout,
        redis_socket_connect_timeout=settings.redis.socket_timeout,
        # Loading a model in worker_process_init takes longer than Celery's 4 s default.
        worker_proc_alive_timeout=180,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        include=[f"workers.{stage}.tasks" for stage in STAGES] + ["workers.streaming"],
    )


app = Celery("talkfarm")
configure(app, get_settings())

# Connects worker_process_init, where each worker process loads its stage's model.
import workers.runtime  # noqa: E402,F401
