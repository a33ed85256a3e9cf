"""The LLM backend interface and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

from workers.payload import Turn
from workers.registry import ModelLifecycle, Registry
from workers.settings import Settings
from workers.timing import backend_call


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


class LLMBackend(ModelLifecycle, ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    capabilities: ClassVar[LLMCapabilities] = LLMCapabilities()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def reply(self, messages: Sequence[Turn], options: GenerationOptions) -> str:
        """The assistant's next message after ``messages`` (system prompt first), raw text."""
        self.load()
        with backend_call("llm", self.name):
            return self._reply(messages, options)

    @abstractmethod
    def _reply(self, messages: Sequence[Turn], options: GenerationOptions) -> str: ...


registry: Registry[LLMBackend] = Registry("llm", "workers.llm.backends")
