"""The boundary every backend call passes: timing, metrics and error translation."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

from billiard.exceptions import SoftTimeLimitExceeded
from prometheus_client import Histogram

from contracts.errors import PermanentError, StageError, StageTimeout, TransientError

log = logging.getLogger(__name__)

BACKEND_SECONDS = Histogram(
    "talkfarm_backend_seconds",
    "Time spent inside a stage backend call",
    ["stage", "backend"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)


class CallTimer:
    seconds: float = 0.0


@contextmanager
def backend_call(stage: str, backend: str) -> Iterator[CallTimer]:
    """Time a backend call and translate what escapes it into a ``StageError``.

    Errors the backend already classified pass through; running out of memory is
    transient; anything else a vendor library raises is permanent for this input.
    """
    timer = CallTimer()
    start = time.perf_counter()
    try:
        yield timer
    except (StageError, SoftTimeLimitExceeded):
        raise
    except MemoryError as e:
        raise TransientError(f"{stage} backend {backend} ran out of memory") from e
    except TimeoutError as e:
        raise StageTimeout(f"{stage} backend {backend} timed out: {e}") from e
    except Exception as e:
        # The library's own words may quote the input or name server paths: they go to the log, at DEBUG.
        log.debug("%s backend %s failed: %s", stage, backend, e)
        raise PermanentError(f"{stage} backend {backend} failed ({type(e).__name__})", code=f"{stage}_failed") from e
    finally:
        timer.seconds = time.perf_counter() - start
        BACKEND_SECONDS.labels(stage, backend).observe(timer.seconds)
