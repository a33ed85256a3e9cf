"""The coordinator's own Prometheus metrics, answered at ``GET /metrics`` (no redirect).

Besides the process metrics of the client library and the cache counters
(``cache.metrics``): HTTP requests and their latency by route template and status,
jobs submitted and finished (by mode, outcome and error code), the time to a
streamed job's first segment, and the stage and dead-letter queue depths read from
the broker at scrape time (``pipeline.queue_metrics``).

A coordinator of several processes (``talkfarm-admin farm`` with
``coordinator.workers`` > 1 or its background process apart) runs with
``PROMETHEUS_MULTIPROC_DIR`` set (``coordinator.farm.metrics_env``): every process
writes its counts there and ``/metrics`` answers their sum, whichever process
is asked (the per-process Python metrics are then left out).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from contracts.events import JobEvent
from contracts.settings import Settings
from coordinator.auth import operator
from coordinator.store.models import JobRow
from coordinator.store.repo import TERMINAL, JobStore
from coordinator.views import seconds_between
from pipeline.queue_metrics import QueueCollector

TIME_TO_FIRST_SEGMENT = Histogram(
    "talkfarm_time_to_first_segment_seconds",
    "From submission to the first rendered segment of a streamed job",
    buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 60),
)
HTTP_REQUESTS = Counter(
    "talkfarm_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "talkfarm_http_request_duration_seconds",
    "Time to answer an HTTP request (to the last byte of the body), by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOBS_SUBMITTED = Counter(
    "talkfarm_jobs_submitted",
    "Jobs accepted, by mode and whether the video cache answered at once",
    ["mode", "cached"],
)
JOBS_FINISHED = Counter(
    "talkfarm_jobs_finished",
    "Jobs that ended, by mode, outcome (succeeded, failed, cancelled) and error code ('' when none)",
    ["mode", "outcome", "code"],
)

_counted: OrderedDict[str, None] = OrderedDict()  # jobs whose end this process counted (bounded)
_counted_lock = threading.Lock()
_COUNTED_MAX = 10_000
_queues: list[QueueCollector] = []

router = APIRouter()


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(operator)])
async def metrics() -> Response:
    body = await asyncio.to_thread(generate_latest, _registry())  # queue depths ask the broker
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """This process's registry, or with ``PROMETHEUS_MULTIPROC_DIR`` the sum of every coordinator process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    for collector in _queues:
        registry.register(collector)
    return registry


def install_queue_collector(settings: Settings) -> None:
    """Export the queue depths of ``settings``' farm (one collector per process; the latest settings win)."""
    if _queues:
        _queues[0].settings = settings
        return
    collector = QueueCollector(settings)
    REGISTRY.register(collector)
    _queues.append(collector)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


def observe_submitted(job_id: str, mode: str, cached: bool) -> None:
    JOBS_SUBMITTED.labels(mode, "true" if cached else "false").inc()
    if cached:
        _count_end(job_id, mode, "succeeded", "")


def observe_cancelled(job_id: str, mode: str) -> None:
    _count_end(job_id, mode, "cancelled", "")


def observe_event(store: JobStore, event: JobEvent) -> None:
    """Count the job's end when ``event`` may have ended it (a job is counted once per process)."""
    if event.kind not in ("completed", "failed") or event.job_id in _counted:
        return
    found = store.get_job(event.job_id)
    if found is not None and found[0].status in TERMINAL:
        job = found[0]
        _count_end(job.id, job.mode, job.status, job.error_code or "")


def _count_end(job_id: str, mode: str, outcome: str, code: str) -> None:
    with _counted_lock:
        if job_id in _counted:
            return
        _counted[job_id] = None
        while len(_counted) > _COUNTED_MAX:
            _counted.popitem(last=False)
    JOBS_FINISHED.labels(mode, outcome, code).inc()


def observe_first_segment(job: JobRow, at: datetime) -> None:
    seconds = seconds_between(job.created_at, at)
    if seconds is not None:
        TIME_TO_FIRST_SEGMENT.observe(max(0.0, seconds))
