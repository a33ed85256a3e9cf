"""The Celery application every talkfarm process shares, configured from the stage table.

One durable queue per stage (``asr``, ``llm``, ``tts``, ``animation``) behind a
direct exchange, routed by task name (``pipeline.stages``): classic queues with
message priorities (``x-max-priority``), a length limit that refuses publishes
past it, and a dead-letter exchange that takes the messages a worker rejects as
poison into ``<stage>.dead`` (``dead_letter_queues``; classic queues work the same
on RabbitMQ 3.10 and 4). JSON only, late acknowledgement, prefetch 1, per-stage
soft and hard time limits, results in the Redis results instance. Importing this module registers no task and loads
no model: the coordinator uses the app only to publish (``pipeline.dispatch``);
``pipeline.launch`` imports the one stage's task module a worker runs.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from contracts.settings import Settings, get_settings
from pipeline import stamps  # noqa: F401  (stamps each task message with its publication time)
from pipeline.stages import ASSEMBLE, STAGES


def stages_exchange(settings: Settings) -> Exchange:
    return Exchange(settings.queue_name("talkfarm.stages"), type="direct", durable=True)


def stage_queues(settings: Settings) -> list[Queue]:
    exchange = stages_exchange(settings)
    broker = settings.broker
    arguments = {"x-max-length": broker.queue_max_length, "x-overflow": "reject-publish",
                 "x-max-priority": broker.max_priority,
                 "x-dead-letter-exchange": settings.queue_name(broker.dead_letter_exchange)}
    return [
        Queue(settings.queue_name(spec.queue), exchange, routing_key=spec.queue, durable=True,
              queue_arguments=arguments)
        for spec in STAGES.values()
    ]


def dead_letter_exchange(settings: Settings) -> Exchange:
    return Exchange(settings.queue_name(settings.broker.dead_letter_exchange), type="direct", durable=True)


def dead_letter_queue_name(settings: Settings, stage: str) -> str:
    return settings.queue_name(f"{stage}.dead")


def dead_letter_queues(settings: Settings) -> list[Queue]:
    """Where a stage's poison messages wait for an operator (``talkfarm-admin dlq``); dead-lettered with the
    stage queue's routing key, the stage's name."""
    exchange = dead_letter_exchange(settings)
    return [Queue(dead_letter_queue_name(settings, spec.queue), exchange, routing_key=spec.queue, durable=True)
            for spec in STAGES.values()]


def declare_queues(settings: Settings) -> None:
    """Declare the stage queues and the dead-letter queues (before a worker consumes or dead-letters)."""
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3, timeout=settings.broker.connect_timeout)
        channel = conn.default_channel
        for queue in (*stage_queues(settings), *dead_letter_queues(settings)):
            queue.bind(channel).declare()


def configure(app: Celery, settings: Settings) -> None:
    queues = stage_queues(settings)
    routed = [(spec.task, spec.name) for spec in STAGES.values()] + [(ASSEMBLE.task, ASSEMBLE.stage)]
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
        task_routes={task: {"queue": settings.queue_name(STAGES[stage].queue), "routing_key": STAGES[stage].queue}
                     for task, stage in routed},
        task_annotations={
            task: {"soft_time_limit": settings.stage(stage).soft_seconds,
                   "time_limit": settings.stage(stage).hard_seconds}
            for task, stage in routed
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
    )


app = Celery("talkfarm")
configure(app, get_settings())
