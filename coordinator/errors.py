"""API errors: every 4xx/5xx answer is ``{"code": ..., "message": ...}``, never a plain-text 500.

Outages of what the coordinator depends on answer 503 with what is down
(``store_unavailable``, ``broker_unavailable``, ``results_unavailable``), so a
client knows a retry may work; anything else unexpected is a 500
``internal_error`` whose details go to the log, not to the client.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import amqp.exceptions
import kombu.exceptions
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.errors import public_message

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "upload_too_large"}
_OUTAGES: tuple[tuple[tuple[type[Exception], ...], str, str], ...] = (
    ((SQLAlchemyError,), "store_unavailable", "the job store is unavailable; try again"),
    ((kombu.exceptions.OperationalError, amqp.exceptions.ConnectionError), "broker_unavailable",
     "the message broker is unavailable; try again"),
    ((redis.RedisError,), "results_unavailable", "the results store is unavailable; try again"),
)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, public_message(exc.message)), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:]) or 'request'}: {err.get('msg')}"
            for err in exc.errors()
        )
        return JSONResponse(error_body("invalid_request", problems or "invalid request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        if exc.status_code == 400 and "multipart" in str(exc.detail).lower():
            code = "bad_multipart"
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    # Outages are registered by class: the exception middleware answers them and the request ends there.
    # The handler of ``Exception`` runs in the server-error middleware instead, which raises the exception
    # again once it has answered; the server then drops the connection, and a client still sending its
    # upload sees a reset instead of the answer.
    for kinds, code, message in _OUTAGES:
        for kind in kinds:
            app.add_exception_handler(kind, _outage_handler(code, message))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        for kinds, code, message in _OUTAGES:
            if isinstance(exc, kinds):
                return _outage_answer(request, exc, code, message)
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal_error", "the server failed to answer this request"), status_code=500)


def _outage_answer(request: Request, exc: Exception, code: str, message: str) -> JSONResponse:
    log.warning("%s %s: %s (%s)", request.method, request.url.path, code, type(exc).__name__)
    return JSONResponse(error_body(code, message), status_code=503, headers={"Retry-After": "5"})


def _outage_handler(code: str, message: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return _outage_answer(request, exc, code, message)

    return handler
