"""Every HTTP request of the coordinator: its trace, its log context, its metrics and one access line.

``ObserveMiddleware`` (pure ASGI) takes the W3C ``traceparent`` header of the
request (or starts a trace), binds the trace ID to the log context of everything
the request does (threads started with ``asyncio.to_thread`` included; a route
adds the job's IDs with ``contracts.logs.bind``), answers with the request's own
``traceparent``, counts the request and times it by route template
(``/v1/jobs/{job_id}``, never the ID itself) and status — to the last part of the
answer's body, so a response's background task (a submit's publish) is not counted — and writes one access line
(``coordinator.http``) in place of uvicorn's. A job submitted in the request takes
the trace with it (``current_trace``: the job payload's ``traceparent``).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, MutableMapping

from contracts import logs
from contracts.logs import bind, log_context
from contracts.telemetry import LogSettings, Trace
from coordinator.metrics import observe_request

log = logging.getLogger("coordinator.http")
_trace: ContextVar[Trace | None] = ContextVar("talkfarm_trace", default=None)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
UNMATCHED = "<unmatched>"  # the route label of a path no route knows: bounded, whatever clients send
_QUIET = frozenset({"/metrics", "/healthz", "/readyz"})


def configure_logging(settings: LogSettings) -> None:
    """The coordinator's logging: uvicorn's lines in the same format, its access line left to ours."""
    logs.configure_logging(settings, "coordinator")
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def current_trace() -> Trace | None:
    """The trace of the request being handled (None outside one)."""
    return _trace.get()


def route_template(scope: Scope) -> str:
    """The matched route's path template; mounts and unknown paths give a fixed label."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Trace.parse(_header(scope, b"traceparent"))
        trace = incoming.child() if incoming is not None else Trace.start()
        token = _trace.set(trace)
        status = 500
        started = time.perf_counter()
        answered: float | None = None  # when the body's last part went out; a response's background task runs after

        async def send_traced(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"traceparent", trace.traceparent.encode())]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = time.perf_counter()

        with log_context(trace_id=trace.trace_id, span_id=trace.parent_id):
            try:
                await self.app(scope, receive, send_traced)
            finally:
                seconds = (answered if answered is not None else time.perf_counter()) - started
                route = route_template(scope)
                observe_request(scope["method"], route, status, seconds)
                params = scope.get("path_params") or {}
                bind(**{k: params[k] for k in ("job_id", "session_id") if k in params})
                # Scrapes and probes come every few seconds: debug only.
                level = logging.DEBUG if route in _QUIET else logging.INFO
                log.log(level, "%s %s %d %.3f s", scope["method"], route, status, seconds)
                _trace.reset(token)
