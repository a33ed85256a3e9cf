"""Every stage message carries the time it was published, so a worker can tell how long it waited.

Connected to Celery's ``before_task_publish`` in every publishing process (the
coordinator and the workers) as soon as the app is imported: the header
``talkfarm_published_at`` (Unix seconds) is set on each task message; the worker
reads it back as ``task.request.talkfarm_published_at`` (``pipeline.observe``).
A retry is a new message with a new time.
"""

from __future__ import annotations

import time
from typing import Any

from celery.signals import before_task_publish

PUBLISHED_AT = "talkfarm_published_at"


@before_task_publish.connect(weak=False)
def stamp_publication(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers[PUBLISHED_AT] = time.time()


def published_at(request: Any) -> float | None:
    """The publication time a task's request carries, if any."""
    value = getattr(request, PUBLISHED_AT, None)
    return float(value) if isinstance(value, (int, float)) else None
