"""LLM backend: any OpenAI-compatible chat-completions server, streamed.

vLLM, the llama.cpp server, text-generation-inference and hosted APIs speak the
same protocol: ``POST {base_url}/chat/completions`` with ``"stream": true``
answers with server-sent events, one ``data: {json}`` line per chunk and
``data: [DONE]`` at the end. Settings under ``llm.openai`` name the server, the
model and the key (``TALKFARM_LLM__OPENAI__BASE_URL`` …).

Connection errors, timeouts, 429 and 5xx answers are transient: retried here
with backoff while nothing has been streamed yet, then raised as
``TransientError`` for the task to retry. Other 4xx answers (a bad key, an
unknown model) are permanent: no retry can fix them.
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Any, Iterator, Sequence

import httpx

from contracts.errors import PermanentError, TransientError
from contracts.payload import Turn
from contracts.settings import Settings
from workers.llm.base import GenerationOptions, LLMBackend, LLMCapabilities, registry
from workers.llm.deltas import ReplyText

log = logging.getLogger(__name__)

# OpenAI's API accepts at most four stop sequences.
MAX_STOP = 4
_RETRY_AFTER_CAP = 10.0


def _error_text(response: httpx.Response) -> str:
    """The server's error message, short."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:300]
    return str(error or body)[:300]


class ServerBusy(TransientError):
    """The server answered 408, 429 or 5xx; ``retry_after`` is its Retry-After in seconds, if any."""

    code = "llm_unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None  # absent, or an HTTP date: back off as usual


def classify_status(response: httpx.Response) -> PermanentError | TransientError:
    """The error an HTTP error answer stands for."""
    status = response.status_code
    text = f"LLM server answered {status}: {_error_text(response)}"
    if status == 429 or status == 408 or status >= 500:
        return ServerBusy(text, _retry_after(response))
    if status in (401, 403):
        return PermanentError(text, code="llm_unauthorized")
    return PermanentError(text, code="llm_rejected")


DONE: dict[str, Any] = {}


def parse_sse_line(line: str) -> dict[str, Any] | None:
    """One line of the event stream: its JSON chunk, ``DONE`` at ``data: [DONE]``, or None."""
    if not line.startswith("data:"):
        return None  # blank separators, ": keep-alive" comments, "event:" lines
    data = line[5:].strip()
    if data == "[DONE]":
        return DONE
    if not data:
        return None
    try:
        chunk = json.loads(data)
    except ValueError as e:
        raise TransientError(f"the LLM server sent a malformed event: {data[:200]!r}") from e
    if not isinstance(chunk, dict):
        raise TransientError(f"the LLM server sent an unexpected event: {data[:200]!r}")
    if "error" in chunk:
        raise TransientError(f"the LLM server failed mid-stream: {str(chunk['error'])[:300]}")
    return chunk


def chunk_text(chunk: dict[str, Any]) -> str:
    """The text a chat-completion chunk adds (``choices[0].delta.content``)."""
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content")
    return content if isinstance(content, str) else ""


@registry.register("openai")
class OpenAICompatLLM(LLMBackend):
    """Chat completions from an OpenAI-compatible server, streamed token by token."""

    # The server batches concurrent requests itself (vLLM: continuous batching).
    capabilities = LLMCapabilities(streaming=True, batching=False, gpu=False, context_tokens=8192)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.options = settings.llm.openai
        self._client: httpx.Client | None = None

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.version}:{self.options.base_url.rstrip('/')}:{self.options.model}"

    def check(self) -> None:
        if not self.options.base_url or not self.options.model:
            raise PermanentError(
                "the openai LLM backend needs TALKFARM_LLM__OPENAI__BASE_URL (e.g. http://127.0.0.1:8000/v1) "
                "and TALKFARM_LLM__OPENAI__MODEL",
                code="llm_config",
            )
        if not self.options.base_url.startswith(("http://", "https://")):
            raise PermanentError(f"llm.openai.base_url {self.options.base_url!r} is not an http(s) URL",
                                 code="llm_config")

    def _load(self) -> None:
        self.check()
        headers = {"Accept": "text/event-stream"}
        key = self.options.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(self.options.read_timeout, connect=self.options.connect_timeout)
        self._client = httpx.Client(base_url=self.options.base_url.rstrip("/") + "/", headers=headers,
                                    timeout=timeout)

    def _unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def count_tokens(self, messages: Sequence[Turn]) -> int:
        return super().count_tokens(messages)  # no tokenizer here: an estimate

    def request_body(self, messages: Sequence[Turn], options: GenerationOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.options.model,
            "messages": [{"role": turn.role, "content": turn.content} for turn in messages],
            "stream": True,
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
        }
        if options.stop:
            body["stop"] = list(options.stop[:MAX_STOP])
        return body

    def _stream(self, messages: Sequence[Turn], options: GenerationOptions) -> Iterator[str]:
        if options.max_new_tokens < 1:
            raise PermanentError("max_new_tokens must be at least 1", code="llm_options")
        body = self.request_body(messages, options)
        text = ReplyText(options.stop)  # stop strings past the fourth are cut here
        attempt = 0
        while True:
            try:
                yield from self._attempt(body, text)
                return
            except TransientError as e:
                if text.sent or attempt >= self.options.max_retries:
                    raise  # half a reply was streamed: the task retries the whole of it
                delay = self._delay(attempt, e)
                log.warning("LLM server: %s; retry %d in %.2f s", e.message, attempt + 1, delay)
                time.sleep(delay)
                attempt += 1

    def _attempt(self, body: dict[str, Any], text: ReplyText) -> Iterator[str]:
        assert self._client is not None
        received = ""
        try:
            with self._client.stream("POST", "chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise classify_status(response)
                for line in response.iter_lines():
                    chunk = parse_sse_line(line)
                    if chunk is DONE:
                        break
                    if chunk is None:
                        continue
                    received += chunk_text(chunk)
                    delta = text.update(received)
                    if delta:
                        yield delta
                    if text.stopped:
                        break
        except httpx.TimeoutException as e:
            raise TransientError(f"the LLM server timed out: {type(e).__name__}", code="llm_timeout") from e
        except httpx.TransportError as e:
            raise TransientError(f"cannot reach the LLM server: {type(e).__name__}: {e}",
                                 code="llm_unavailable") from e
        last = text.finish(received)
        if last:
            yield last

    def _delay(self, attempt: int, error: TransientError) -> float:
        if isinstance(error, ServerBusy) and error.retry_after is not None:
            return min(_RETRY_AFTER_CAP, error.retry_after)
        return random.uniform(0.5, 1.0) * self.options.retry_backoff * 2**attempt
