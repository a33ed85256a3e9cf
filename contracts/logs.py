"""Structured logs: every line of a job names its job, session and trace, never what the user said.

``configure_logging`` installs one handler on the root logger of a process, in
the ``log.format`` setting's format: ``json`` (one object a line, for a log
collector) or ``text``. The IDs come from a context variable: ``log_context``
binds them around a stage task (``pipeline.runner``) or an HTTP request
(``coordinator.observe``); ``bind`` adds one to the current request's context.
Both formats print only fixed fields: ``extra`` data that a library attaches to a
record (Celery puts task arguments there) is never written, and neither may a
message carry a transcript, a reply or media (STYLE 14).

    with log_context(job_id=job.job_id, session_id=job.session_id, trace_id=trace.trace_id, stage="tts"):
        log.info("synthesised %d sentences", n)
    # {"ts": "...", "level": "INFO", "logger": "...", "message": "synthesised 2 sentences",
    #  "service": "worker-tts", "job_id": "...", "session_id": "...", "trace_id": "...", "stage": "tts"}
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator

from contracts.telemetry import LogSettings

# The context fields, in the order they are printed.
FIELDS = ("job_id", "session_id", "trace_id", "span_id", "stage", "segment")
_context: ContextVar[dict[str, str] | None] = ContextVar("talkfarm_log_context", default=None)
_service = "talkfarm"


def current() -> dict[str, str]:
    """The fields bound in this context (a copy)."""
    return dict(_context.get() or {})


@contextmanager
def log_context(**fields: object) -> Iterator[dict[str, str]]:
    """Bind fields (None values are left out) for the log lines written inside the block.

    The returned dict is the block's own: ``bind`` adds to it, also from threads started with
    ``asyncio.to_thread`` or ``contextvars.copy_context`` inside the block.
    """
    bound = {**current(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _context.set(bound)
    try:
        yield bound
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add fields to the innermost ``log_context`` (no effect outside one)."""
    bound = _context.get()
    if bound is not None:
        bound.update({k: str(v) for k, v in fields.items() if v is not None})


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record as it is emitted (in the thread that logs it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.talkfarm = current()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, service, the bound IDs, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": _service,
            "pid": record.process,
        }
        fields = getattr(record, "talkfarm", {})
        line.update({k: fields[k] for k in FIELDS if k in fields})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [job=… trace=…]: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "talkfarm", {})
        ids = " ".join(f"{k.removesuffix('_id')}={fields[k]}" for k in FIELDS if k in fields)
        record.ids = f" [{ids}]" if ids else ""
        return super().format(record)


def formatter(settings: LogSettings) -> logging.Formatter:
    return JsonFormatter() if settings.format == "json" else TextFormatter()


def configure_logging(settings: LogSettings, service: str) -> None:
    """Send every logger of this process to stderr in the configured format (replacing earlier handlers).

    ``service`` names the process in JSON lines (``coordinator``, ``worker-asr``, …).
    """
    global _service
    _service = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
