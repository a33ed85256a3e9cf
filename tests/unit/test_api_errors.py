"""API errors: an outage of a dependency answers 503 with its code and ends the request; a bug answers 500."""

from __future__ import annotations

import kombu.exceptions
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from coordinator.errors import install_handlers

pytestmark = pytest.mark.unit


def failing_app(error: Exception) -> FastAPI:
    """An app whose upload route fails with ``error`` before it reads the body (as a quota check would)."""
    app = FastAPI()
    install_handlers(app)

    @app.post("/upload")
    async def upload() -> None:
        raise error

    return app


@pytest.mark.parametrize("error, code", [
    (OperationalError("SELECT 1", {}, Exception("connection refused")), "store_unavailable"),
    (kombu.exceptions.OperationalError("connection refused"), "broker_unavailable"),
    (redis.ConnectionError("connection refused"), "results_unavailable"),
])
def test_an_outage_answers_503_with_its_code_and_is_not_raised_again(error: Exception, code: str) -> None:
    # raise_server_exceptions: an exception that passes the handlers (and so makes the server drop the
    # connection, resetting a client still sending its upload) fails the request here.
    with TestClient(failing_app(error), raise_server_exceptions=True) as client:
        answer = client.post("/upload", content=b"x" * 1_000_000)
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == code and answer.headers["Retry-After"] == "5"


def test_a_bug_answers_500_internal_error_without_its_details() -> None:
    with TestClient(failing_app(RuntimeError("secret details")), raise_server_exceptions=False) as client:
        answer = client.post("/upload", content=b"x")
    assert answer.status_code == 500
    assert answer.json() == {"code": "internal_error", "message": "the server failed to answer this request"}
