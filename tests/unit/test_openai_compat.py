"""The OpenAI-compatible LLM backend against a local server that speaks the streaming protocol.

The server is a real HTTP server on a socket, in a thread of the test: each
request gets the next planned answer (an SSE stream, an error status, a stall),
and the test checks what the client sent and what it made of the answers.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from contracts.errors import PermanentError, TransientError
from contracts.payload import Turn
from contracts.settings import LLMSettings, OpenAISettings, Settings
from workers.llm.backends.openai_compat import OpenAICompatLLM, chunk_text, parse_sse_line
from workers.llm.base import GenerationOptions, registry

pytestmark = pytest.mark.unit

MESSAGES = [Turn(role="system", content="Be brief."), Turn(role="user", content="Hi there")]


@dataclass
class Answer:
    status: int = 200
    chunks: list[str] = field(default_factory=list)  # text deltas, sent as chat.completion.chunk events
    body: str = ""  # for error answers
    headers: dict[str, str] = field(default_factory=dict)
    done: bool = True  # end with "data: [DONE]"
    stall: float = 0.0  # seconds to wait after the first chunk
    cut: bool = False  # close the connection mid-stream, without a proper end


def sse(chunk: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(chunk)}\n\n".encode()


class FakeServer:
    def __init__(self) -> None:
        self.plan: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append({"path": self.path, **json.loads(self.rfile.read(length))})
                server.headers.append(dict(self.headers))
                answer = server.plan.pop(0) if server.plan else Answer(chunks=["ok"])
                if answer.status != 200:
                    body = answer.body.encode()
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def write(data: bytes) -> None:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                write(b": keep-alive\n\n")
                write(sse({"id": "c1", "object": "chat.completion.chunk",
                           "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}))
                for index, text in enumerate(answer.chunks):
                    write(sse({"id": "c1", "object": "chat.completion.chunk",
                               "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}))
                    if index == 0 and answer.stall:
                        time.sleep(answer.stall)
                if answer.cut:
                    self.close_connection = True
                    self.wfile.write(b"5\r\ndat")  # a chunk that never completes
                    self.wfile.flush()
                    return
                write(sse({"id": "c1", "object": "chat.completion.chunk",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                if answer.done:
                    write(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def backend_for(url: str, **openai: Any) -> OpenAICompatLLM:
    options = {"base_url": url, "model": "smol-test", "api_key": "sk-test", "max_retries": 2,
               "retry_backoff": 0.01, "read_timeout": 5.0, **openai}
    settings = Settings(llm=LLMSettings(backend="openai", openai=OpenAISettings(**options)))
    backend = registry.create("openai", settings)
    assert isinstance(backend, OpenAICompatLLM)
    return backend


def test_streams_the_deltas_and_sends_the_request(server: FakeServer) -> None:
    server.plan = [Answer(chunks=["  Hello", ",", " Alice", "!", "\n"])]
    backend = backend_for(server.url)
    options = GenerationOptions(max_new_tokens=20, temperature=0.7, top_p=0.9, stop=("\nUser:",))
    deltas = list(backend.stream(MESSAGES, options))
    assert deltas == ["Hello", ",", " Alice", "!"]
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "smol-test" and request["stream"] is True
    assert request["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    assert (request["temperature"], request["top_p"], request["max_tokens"]) == (0.7, 0.9, 20)
    assert request["stop"] == ["\nUser:"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert backend.reply(MESSAGES, options) == "ok"  # the next (default) answer


def test_a_server_error_is_retried_then_answers(server: FakeServer) -> None:
    server.plan = [Answer(status=500, body='{"error": {"message": "overloaded"}}'),
                   Answer(status=429, body="{}", headers={"Retry-After": "0"}),
                   Answer(chunks=["Fine", " thanks."])]
    assert backend_for(server.url).reply(MESSAGES, GenerationOptions()) == "Fine thanks."
    assert len(server.requests) == 3


def test_transient_errors_give_up_after_the_retries(server: FakeServer) -> None:
    server.plan = [Answer(status=503, body="busy") for _ in range(5)]
    with pytest.raises(TransientError, match="503"):
        backend_for(server.url, max_retries=2).reply(MESSAGES, GenerationOptions())
    assert len(server.requests) == 3


def test_unauthorized_is_permanent_and_not_retried(server: FakeServer) -> None:
    server.plan = [Answer(status=401, body='{"error": {"message": "Incorrect API key provided"}}')]
    with pytest.raises(PermanentError) as caught:
        backend_for(server.url).reply(MESSAGES, GenerationOptions())
    assert caught.value.code == "llm_unauthorized" and "Incorrect API key" in caught.value.message
    assert len(server.requests) == 1
    server.plan = [Answer(status=404, body='{"error": {"message": "model not found"}}')]
    with pytest.raises(PermanentError) as caught:
        backend_for(server.url).reply(MESSAGES, GenerationOptions())
    assert caught.value.code == "llm_rejected"


def test_stop_strings_are_cut_on_the_client_too(server: FakeServer) -> None:
    server.plan = [Answer(chunks=["Yes.", "\nUs", "er: more"])]
    options = GenerationOptions(stop=("a", "b", "c", "d", "\nUser:"))  # the fifth is not sent
    assert backend_for(server.url).reply(MESSAGES, options) == "Yes."
    assert server.requests[0]["stop"] == ["a", "b", "c", "d"]


def test_a_stream_cut_after_text_is_not_retried_here(server: FakeServer) -> None:
    server.plan = [Answer(chunks=["Half", " a reply"], cut=True), Answer(chunks=["never"])]
    deltas: list[str] = []
    with pytest.raises(TransientError):
        for delta in backend_for(server.url).stream(MESSAGES, GenerationOptions()):
            deltas.append(delta)
    assert deltas and "".join(deltas).startswith("Half")
    assert len(server.requests) == 1  # the task retries the whole reply, not this client


def test_a_stalled_stream_times_out(server: FakeServer) -> None:
    server.plan = [Answer(chunks=["Slow", " reply"], stall=2.0)]
    with pytest.raises(TransientError) as caught:
        backend_for(server.url, read_timeout=0.3, max_retries=0).reply(MESSAGES, GenerationOptions())
    assert caught.value.code == "llm_timeout"


def test_no_server_is_transient() -> None:
    backend = backend_for("http://127.0.0.1:9/v1", max_retries=1, connect_timeout=0.5)
    with pytest.raises(TransientError) as caught:
        backend.reply(MESSAGES, GenerationOptions())
    assert caught.value.code == "llm_unavailable"


def test_settings_are_checked() -> None:
    with pytest.raises(PermanentError, match="TALKFARM_LLM__OPENAI__BASE_URL") as caught:
        backend_for("", model="").check()
    assert caught.value.code == "llm_config"
    with pytest.raises(PermanentError, match="not an http"):
        backend_for("ftp://host/v1").check()


def test_event_lines() -> None:
    assert parse_sse_line("") is None and parse_sse_line(": ping") is None
    assert chunk_text(parse_sse_line('data: {"choices": [{"delta": {"content": "Hi"}}]}') or {}) == "Hi"
    assert chunk_text({"choices": []}) == "" and chunk_text({"choices": [{"delta": {"content": None}}]}) == ""
    with pytest.raises(TransientError, match="malformed"):
        parse_sse_line("data: {not json")
    with pytest.raises(TransientError, match="mid-stream"):
        parse_sse_line('data: {"error": {"message": "boom"}}')
