"""What every process knows of operations: its log and metrics settings, and the trace it works for.

A job's trace is a W3C Trace Context (``traceparent: 00-<trace id>-<parent id>-<flags>``):
the coordinator takes it from the client's ``traceparent`` header (or starts one), the
job payload carries it from stage to stage, and every log line of the job names its
trace ID. ``Trace`` parses and writes the header; nothing here imports a tracing library.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
TRACEPARENT_PATTERN = _TRACEPARENT.pattern


class LogSettings(BaseModel):
    """``TALKFARM_LOG__FORMAT=json`` writes one JSON object a line (job, session and trace IDs as fields)."""

    format: Literal["text", "json"] = "text"
    level: str = "INFO"


class MetricsSettings(BaseModel):
    """Prometheus exposition of the worker processes (the coordinator answers ``/metrics`` on its own port)."""

    enabled: bool = True
    host: str = "0.0.0.0"
    # A worker's /metrics, /healthz and /readyz; 0: any free port (the worker logs which).
    port: int = 9100
    # The folder where a worker's pool processes write their samples (prometheus_client's multiprocess
    # mode); empty: a fresh temporary folder per worker, removed when it stops.
    multiproc_dir: str = ""
    # /healthz fails when the worker's event heartbeat (every 2 s) is older than this.
    heartbeat_timeout_seconds: float = 60.0
    # How long the coordinator keeps queue depths read from the broker between scrapes.
    queue_depth_cache_seconds: float = 2.0


@dataclass(frozen=True)
class Trace:
    """One W3C trace context: the trace a job belongs to and the span that passed it on."""

    trace_id: str
    parent_id: str
    flags: str = "01"

    @classmethod
    def parse(cls, header: str | None) -> "Trace | None":
        """The trace of a ``traceparent`` header; None when it is absent or malformed (then start a new one).

        All-zero IDs are invalid (W3C); version ``ff`` is forbidden; later versions are read as 00.
        """
        match = _TRACEPARENT.match((header or "").strip().lower())
        if match is None:
            return None
        version, trace_id, parent_id, flags = match.groups()
        if version == "ff" or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
            return None
        return cls(trace_id, parent_id, flags)

    @classmethod
    def start(cls) -> "Trace":
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    def child(self) -> "Trace":
        """The same trace under a new span (what a hop passes on)."""
        return Trace(self.trace_id, secrets.token_hex(8), self.flags)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"
