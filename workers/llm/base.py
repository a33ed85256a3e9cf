"""The LLM backend interface and registry.

A backend implements ``_stream`` (text deltas as they are generated) or, if it
cannot stream, ``_reply`` (the whole text at once); the other one is derived.
``stream()`` and ``reply()`` are the public calls: they load the model, time the
call and translate errors, and ``reply()`` is always the joined ``stream()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Iterator, Sequence

from contracts.payload import Turn
from contracts.settings import Settings
from pipeline.calls import backend_call
from pipeline.metrics import LLM_INFERENCE_SECONDS, LLM_TIME_TO_FIRST_TOKEN
from pipeline.registry import ModelLifecycle, Registry


@dataclass(frozen=True)
class LLMCapabilities:
    streaming: bool = False
    batching: bool = False
    gpu: bool = False
    context_tokens: int = 2048


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 60
    temperature: float = 0.0  # 0: greedy, deterministic
    top_p: float = 1.0
    stop: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: Settings) -> "GenerationOptions":
        llm = settings.llm
        return cls(max_new_tokens=llm.max_new_tokens, temperature=llm.temperature, top_p=llm.top_p,
                   stop=tuple(llm.stop))


class LLMBackend(ModelLifecycle):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[LLMCapabilities] = LLMCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls._stream is LLMBackend._stream and cls._reply is LLMBackend._reply:
            raise TypeError(f"{cls.__name__} must implement _stream or _reply")

    @property
    def identity(self) -> str:
        """What names the model that answers (part of the FAQ cache key)."""
        return f"{self.name}:{self.version}:{self.settings.llm.model}"

    def stream(self, messages: Sequence[Turn], options: GenerationOptions) -> Iterator[str]:
        """The assistant's next message after ``messages`` (system prompt first), as text deltas.

        Deltas arrive as the model writes them; leading and trailing whitespace of the
        whole reply is not sent, nor anything from a stop string on. Closing the
        iterator early asks the backend to stop generating.
        """
        self.load()
        started = time.perf_counter()
        first = True
        try:
            with backend_call("llm", self.name):
                for delta in self._stream(messages, options):
                    if first:
                        LLM_TIME_TO_FIRST_TOKEN.labels(self.name).observe(time.perf_counter() - started)
                        first = False
                    yield delta
        finally:
            LLM_INFERENCE_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    def reply(self, messages: Sequence[Turn], options: GenerationOptions) -> str:
        """The whole reply: exactly the joined ``stream()``."""
        return "".join(self.stream(messages, options))

    def count_tokens(self, messages: Sequence[Turn]) -> int:
        """Prompt size of ``messages`` in tokens. This default estimates (4 characters a token)."""
        return sum(4 + len(turn.content) // 4 for turn in messages) + 2

    def _stream(self, messages: Sequence[Turn], options: GenerationOptions) -> Iterator[str]:
        """For backends that cannot stream: the whole reply as one delta."""
        text = self._reply(messages, options).strip()
        if text:
            yield text

    def _reply(self, messages: Sequence[Turn], options: GenerationOptions) -> str:
        """For backends that stream: the joined deltas."""
        return "".join(self._stream(messages, options))


registry: Registry[LLMBackend] = Registry("llm", "workers.llm.backends")
