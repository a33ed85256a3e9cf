"""The coordinator's own Prometheus metrics."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Histogram

from coordinator.store.models import JobRow
from coordinator.views import seconds_between

TIME_TO_FIRST_SEGMENT = Histogram(
    "talkfarm_time_to_first_segment_seconds",
    "From submission to the first rendered segment of a streamed job",
    buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 60),
)


def observe_first_segment(job: JobRow, at: datetime) -> None:
    seconds = seconds_between(job.created_at, at)
    if seconds is not None:
        TIME_TO_FIRST_SEGMENT.observe(max(0.0, seconds))
