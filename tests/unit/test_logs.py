"""Structured logs and trace context: fixed fields, the bound IDs, W3C traceparent, nothing else."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from contracts.logs import ContextFilter, JsonFormatter, TextFormatter, bind, log_context
from contracts.telemetry import Trace

pytestmark = pytest.mark.unit


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_bound_ids_and_never_extra_data():
    logger, stream = capture(JsonFormatter())
    with log_context(job_id="j1", session_id="s1", trace_id="t" * 32, stage="tts", segment=None):
        logger.info("spoke %d sentences", 2, extra={"data": {"args": ["the user's words"]}})
        with log_context(segment=3):
            logger.warning("inner")
    logger.info("outside")
    first, inner, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "spoke 2 sentences" and first["level"] == "INFO"
    assert (first["job_id"], first["session_id"], first["trace_id"], first["stage"]) == ("j1", "s1", "t" * 32, "tts")
    assert "segment" not in first and "user's words" not in stream.getvalue()
    assert inner["segment"] == "3" and inner["job_id"] == "j1"
    assert "job_id" not in outside


def test_bind_reaches_the_request_context_from_a_thread():
    logger, stream = capture(TextFormatter())

    async def request() -> None:
        with log_context(trace_id="abc"):
            await asyncio.to_thread(bind, job_id="j9")  # the job service runs in a thread
            logger.info("accepted")

    asyncio.run(request())
    assert "[job=j9 trace=abc]: accepted" in stream.getvalue()


def test_traceparent():
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    trace = Trace.parse(header)
    assert trace is not None and trace.traceparent == header
    assert Trace.parse(header.upper()) == trace
    child = trace.child()
    assert child.trace_id == trace.trace_id and child.parent_id != trace.parent_id
    for bad in (None, "", "garbage", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"):
        assert Trace.parse(bad) is None
    started = Trace.start()
    assert Trace.parse(started.traceparent) == started
