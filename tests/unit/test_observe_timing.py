"""The request histogram times the answer, not what the response runs after it (a submit's publish)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import coordinator.observe as observe

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, list[tuple[Any, ...]]]:
    clock, seen = Clock(), []
    monkeypatch.setattr(observe.time, "perf_counter", clock)
    monkeypatch.setattr(observe, "observe_request", lambda *args: seen.append(args))
    return clock, seen


def app(clock: Clock) -> observe.ObserveMiddleware:
    def slow_publish() -> None:
        clock.now += 5.0  # the background task takes 5 s after the answer went out

    async def submit(_: Request) -> JSONResponse:
        clock.now += 0.02
        return JSONResponse({"job_id": "j"}, status_code=202, background=BackgroundTask(slow_publish))

    async def parts() -> Any:
        for _ in range(3):
            clock.now += 1.0
            yield b"part\n"

    async def stream(_: Request) -> StreamingResponse:
        return StreamingResponse(parts(), media_type="text/plain")

    return observe.ObserveMiddleware(Starlette(routes=[Route("/v1/jobs", submit, methods=["POST"]),
                                                       Route("/stream", stream)]))


def test_a_background_task_after_the_answer_is_not_timed(timed: tuple[Clock, list[tuple[Any, ...]]]) -> None:
    clock, seen = timed
    with TestClient(app(clock)) as client:
        assert client.post("/v1/jobs").status_code == 202
    assert clock.now == pytest.approx(105.02)  # the background task did run
    (method, route, status, seconds), = seen
    assert (method, route, status) == ("POST", "/v1/jobs", 202)
    assert seconds == pytest.approx(0.02)


def test_a_streamed_answer_is_timed_to_its_last_part(timed: tuple[Clock, list[tuple[Any, ...]]]) -> None:
    clock, seen = timed
    with TestClient(app(clock)) as client:
        assert client.get("/stream").text == "part\n" * 3
    (_, _, status, seconds), = seen
    assert status == 200
    assert seconds == pytest.approx(3.0)
